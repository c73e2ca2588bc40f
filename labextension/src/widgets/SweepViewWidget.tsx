/** The sweep view hosted in a Lumino widget of the main area. */
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { ISweepViewProps, SweepView } from '../components/SweepView';
import { pipelineIcon } from '../icons';

/** Shows one sweep; its trials are fetched on events while the widget lives. */
export class SweepViewWidget extends ReactWidget {
  constructor(private readonly _props: ISweepViewProps) {
    super();
    const { sweepId, trans, sweeps } = _props;
    this.id = `jp-Mlk-sweep-${sweepId}`;
    this.addClass('jp-Mlk-sweepWidget');
    this.title.icon = pipelineIcon;
    this.title.closable = true;
    this.title.label = trans.__('Sweep %1', sweepId.replace(/^s-\d{8}-/, ''));
    this.title.caption = trans.__('Sweep %1', sweepId);
    sweeps.watchSweep(sweepId);
  }

  get sweepId(): string {
    return this._props.sweepId;
  }

  dispose(): void {
    if (!this.isDisposed) {
      this._props.sweeps.unwatchSweep(this._props.sweepId);
    }
    super.dispose();
  }

  protected render(): JSX.Element {
    return <SweepView {...this._props} />;
  }
}
