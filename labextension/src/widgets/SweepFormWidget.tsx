/** The sweep form of one notebook, hosted in a Lumino widget of the main area. */
import { PathExt } from '@jupyterlab/coreutils';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { ISweepFormProps, SweepForm } from '../components/SweepForm';
import { pipelineIcon } from '../icons';

export class SweepFormWidget extends ReactWidget {
  constructor(private readonly _props: ISweepFormProps) {
    super();
    this.id = `jp-Mlk-newSweep-${_props.path}`;
    this.addClass('jp-Mlk-sweepFormWidget');
    this.title.icon = pipelineIcon;
    this.title.closable = true;
    this.title.label = _props.trans.__(
      'New Sweep: %1',
      PathExt.basename(_props.path)
    );
  }

  get path(): string {
    return this._props.path;
  }

  protected render(): JSX.Element {
    return <SweepForm {...this._props} />;
  }
}
