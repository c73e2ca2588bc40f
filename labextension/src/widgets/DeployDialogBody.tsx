/** The body of the deploy dialog: the deployment's name and canary share. */
import { Dialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { IDeployForm } from '../deployments';

export class DeployDialogBody
  extends ReactWidget
  implements Dialog.IBodyWidget<IDeployForm>
{
  constructor(
    private readonly _model: string,
    initial: IDeployForm,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-Mlk-deployDialog');
    this._value = initial;
  }

  getValue(): IDeployForm {
    return this._value;
  }

  protected render(): JSX.Element {
    return (
      <DeployFields
        model={this._model}
        initial={this._value}
        trans={this._trans}
        onChange={value => (this._value = value)}
      />
    );
  }

  private _value: IDeployForm;
}

function DeployFields(props: {
  model: string;
  initial: IDeployForm;
  trans: TranslationBundle;
  onChange: (value: IDeployForm) => void;
}): JSX.Element {
  const { trans } = props;
  const [form, setForm] = useState(props.initial);
  const set = (patch: Partial<IDeployForm>) => {
    const next = { ...form, ...patch };
    setForm(next);
    props.onChange(next);
  };
  return (
    <div className="jp-Mlk-deployForm">
      <div className="jp-Mlk-runDetail">
        <span className="jp-Mlk-runKey">{trans.__('model')}</span>{' '}
        <code>{props.model}</code>
      </div>
      <label className="jp-Mlk-field">
        <span>{trans.__('Deployment name')}</span>
        <input
          className="jp-mod-styled"
          name="deploy-name"
          value={form.name}
          onChange={e => set({ name: e.target.value })}
        />
      </label>
      <label className="jp-Mlk-field">
        <span>{trans.__('Canary % (empty: replace every version)')}</span>
        <input
          className="jp-mod-styled"
          name="deploy-canary"
          inputMode="numeric"
          placeholder={trans.__('e.g. 10, next to the current version')}
          value={form.canaryPercent}
          onChange={e => set({ canaryPercent: e.target.value })}
        />
      </label>
      <div className="jp-Mlk-legend">
        {trans.__(
          'Lowercase letters, digits and "-", starting with a letter. The model is served by the workspace\'s local inference server.'
        )}
      </div>
    </div>
  );
}
