/** The run view hosted in a Lumino widget of the main area. */
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { IRunViewProps, RunView } from '../components/RunView';
import { shortId } from '../format';
import { pipelineIcon } from '../icons';

/** Shows one run; the model keeps it up to date while the widget lives. */
export class RunViewWidget extends ReactWidget {
  constructor(private readonly _props: IRunViewProps) {
    super();
    const { runId, trans, model } = _props;
    this.id = `jp-Mlk-run-${runId}`;
    this.addClass('jp-Mlk-runWidget');
    this.title.icon = pipelineIcon;
    this.title.closable = true;
    this._setTitle(trans);
    model.runChanged.connect((_, run) => {
      if (run.id === runId) {
        this._setTitle(trans);
      }
    }, this);
    model.watchRun(runId);
  }

  get runId(): string {
    return this._props.runId;
  }

  dispose(): void {
    if (!this.isDisposed) {
      this._props.model.unwatchRun(this._props.runId);
    }
    super.dispose();
  }

  protected render(): JSX.Element {
    return <RunView {...this._props} />;
  }

  private _setTitle(trans: TranslationBundle): void {
    const run = this._props.model.getRun(this._props.runId);
    this.title.label = trans.__('Run %1', shortId(this._props.runId));
    this.title.caption = run
      ? trans.__('Run %1 of %2: %3', run.id, run.notebook, run.state)
      : trans.__('Run %1', this._props.runId);
  }
}
