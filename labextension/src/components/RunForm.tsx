/**
 * The parameters of a run as a form: one typed input per pipeline parameter,
 * its default filled in. Only values that differ from the default are sent.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useState } from 'react';

import { IGraphParameter } from '../tokens';

/** What the form holds: the text of each parameter, and the cache choice. */
export interface IRunFormValue {
  params: { [name: string]: string };
  noCache: boolean;
}

/** The text a parameter's default is typed as. */
export function defaultText(param: IGraphParameter): string {
  if (param.type === 'str' && typeof param.default === 'string') {
    return param.default;
  }
  if (param.type === 'bool') {
    return param.default ? 'true' : 'false';
  }
  if (param.type === 'int' || param.type === 'float') {
    return String(param.default);
  }
  return param.source;
}

/** The parameters to send: those whose text differs from the default's. */
export function changedParams(
  parameters: IGraphParameter[],
  texts: { [name: string]: string }
): { [name: string]: string } {
  const out: { [name: string]: string } = {};
  for (const param of parameters) {
    const text = texts[param.name];
    if (text !== undefined && text !== defaultText(param)) {
      out[param.name] = text;
    }
  }
  return out;
}

/** The form's first texts: the defaults, overridden by known parameters. */
export function initialTexts(
  parameters: IGraphParameter[],
  initial: { [name: string]: string }
): { [name: string]: string } {
  return Object.fromEntries(
    parameters.map(p => [p.name, initial[p.name] ?? defaultText(p)])
  );
}

export function RunForm(props: {
  parameters: IGraphParameter[];
  trans: TranslationBundle;
  /** Texts to start from instead of the defaults (a sweep trial's values). */
  initial?: { [name: string]: string };
  onChange: (value: IRunFormValue) => void;
}): JSX.Element {
  const { parameters, trans } = props;
  const [texts, setTexts] = useState<{ [name: string]: string }>(() =>
    initialTexts(parameters, props.initial ?? {})
  );
  const [noCache, setNoCache] = useState(false);
  const update = (next: { [name: string]: string }, nextNoCache: boolean) => {
    setTexts(next);
    setNoCache(nextNoCache);
    props.onChange({
      params: changedParams(parameters, next),
      noCache: nextNoCache
    });
  };
  return (
    <div className="jp-Mlk-runForm">
      {parameters.length === 0 && (
        <p className="jp-Mlk-empty">
          {trans.__('This notebook has no parameters cell.')}
        </p>
      )}
      {parameters.map(param => (
        <label key={param.name} className="jp-Mlk-field">
          <span>
            {param.name}
            <span className="jp-Mlk-paramType">
              {' '}
              {param.annotation ?? param.type}
            </span>
          </span>
          <ParamInput
            param={param}
            text={texts[param.name] ?? ''}
            onChange={text => update({ ...texts, [param.name]: text }, noCache)}
          />
        </label>
      ))}
      <label className="jp-Mlk-check">
        <input
          type="checkbox"
          checked={noCache}
          onChange={e => update(texts, e.target.checked)}
        />
        {trans.__('Run every step again (ignore the cache)')}
      </label>
    </div>
  );
}

function ParamInput(props: {
  param: IGraphParameter;
  text: string;
  onChange: (text: string) => void;
}): JSX.Element {
  const { param, text, onChange } = props;
  const name = `jp-Mlk-param-${param.name}`;
  if (param.choices && param.choices.length) {
    return (
      <select
        className="jp-mod-styled"
        name={name}
        value={text}
        onChange={e => onChange(e.target.value)}
      >
        {param.choices.map(choice => {
          const value =
            typeof choice === 'string' ? choice : JSON.stringify(choice);
          return (
            <option key={value} value={value}>
              {value}
            </option>
          );
        })}
      </select>
    );
  }
  if (param.type === 'bool') {
    return (
      <input
        type="checkbox"
        name={name}
        checked={text === 'true'}
        onChange={e => onChange(e.target.checked ? 'true' : 'false')}
      />
    );
  }
  const numeric = param.type === 'int' || param.type === 'float';
  return (
    <input
      className="jp-mod-styled"
      name={name}
      type={numeric ? 'number' : 'text'}
      step={param.type === 'int' ? 1 : numeric ? 'any' : undefined}
      value={text}
      onChange={e => onChange(e.target.value)}
    />
  );
}
