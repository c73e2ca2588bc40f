/** The body of the run dialog: the parameters form, read back on accept. */
import { Dialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import {
  changedParams,
  initialTexts,
  IRunFormValue,
  RunForm
} from '../components/RunForm';
import { IGraphParameter } from '../tokens';

export class RunDialogBody
  extends ReactWidget
  implements Dialog.IBodyWidget<IRunFormValue>
{
  constructor(
    private readonly _parameters: IGraphParameter[],
    private readonly _trans: TranslationBundle,
    private readonly _initial: { [name: string]: string } = {}
  ) {
    super();
    this.addClass('jp-Mlk-runDialog');
    this._value = {
      params: changedParams(_parameters, initialTexts(_parameters, _initial)),
      noCache: false
    };
  }

  getValue(): IRunFormValue {
    return this._value;
  }

  protected render(): JSX.Element {
    return (
      <RunForm
        parameters={this._parameters}
        trans={this._trans}
        initial={this._initial}
        onChange={value => (this._value = value)}
      />
    );
  }

  private _value: IRunFormValue;
}
