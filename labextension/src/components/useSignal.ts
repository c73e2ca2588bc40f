/** A React hook that renders the component again whenever signals fire. */
import { ISignal } from '@lumino/signaling';
import { useEffect, useState } from 'react';

/** Re-renders on every emission of any of `signals`. */
export function useSignals(...signals: ISignal<unknown, unknown>[]): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    const bump = () => setTick(tick => tick + 1);
    signals.forEach(signal => signal.connect(bump));
    return () => {
      signals.forEach(signal => signal.disconnect(bump));
    };
  }, signals);
}
