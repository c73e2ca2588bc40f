/**
 * The slow fallback poll of the panel's models. Live states arrive through
 * jupyter-server's event bus; this only re-fetches an item that is not final
 * yet and has heard no event for a whole period (an event that never came).
 */
export interface IFallbackPollOptions {
  /** Seconds between looks; 0 or less turns the poll off. */
  interval: () => number;
  /** The ids of the items that are not final yet; none stops the poll. */
  pending: () => string[];
  /** When the last event about an item arrived (ms since the epoch). */
  lastEvent: (id: string) => number;
  /** Fetches an item again. */
  fetch: (id: string) => Promise<unknown>;
}

export class FallbackPoll {
  constructor(private readonly _options: IFallbackPollOptions) {}

  /** Starts polling unless it runs already or is turned off. */
  ensure(): void {
    const seconds = this._options.interval();
    if (this._timer || seconds <= 0) {
      return;
    }
    const period = seconds * 1000;
    this._timer = setInterval(() => {
      const pending = this._options.pending();
      if (pending.length === 0) {
        this.stop();
        return;
      }
      const now = Date.now();
      for (const id of pending) {
        if (now - this._options.lastEvent(id) >= period) {
          void this._options.fetch(id).catch(() => undefined);
        }
      }
    }, period) as unknown as number;
  }

  /** Stops polling (it starts again on the next ``ensure``). */
  stop(): void {
    clearInterval(this._timer);
    this._timer = 0;
  }

  private _timer = 0;
}
