/**
 * The sweep form: which notebook parameters to search and over what, the
 * objective and its goal, the algorithm and the budget; prefilled from the
 * notebook's graph.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useState } from 'react';

import {
  ALGORITHMS,
  buildSweepRequest,
  ISweepForm,
  ISweepFormParameter,
  ParameterKind
} from '../sweepForm';
import { IGraph, ISweepRequest } from '../tokens';

export interface ISweepFormProps {
  graph: IGraph;
  path: string;
  initial: ISweepForm;
  trans: TranslationBundle;
  /** Starts the sweep; a rejection's message is shown under the form. */
  onStart: (request: ISweepRequest) => Promise<void>;
}

export function SweepForm(props: ISweepFormProps): JSX.Element {
  const { graph, path, trans } = props;
  const [form, setForm] = useState<ISweepForm>(props.initial);
  const [errors, setErrors] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<ISweepForm>) => setForm({ ...form, ...patch });
  const setParam = (index: number, patch: Partial<ISweepFormParameter>) =>
    set({
      parameters: form.parameters.map((p, i) =>
        i === index ? { ...p, ...patch } : p
      )
    });

  const start = async () => {
    const result = buildSweepRequest(form, path);
    setErrors(result.errors);
    if (!result.request) {
      return;
    }
    setBusy(true);
    try {
      await props.onStart(result.request);
    } catch (error) {
      setErrors([error instanceof Error ? error.message : String(error)]);
    } finally {
      setBusy(false);
    }
  };

  const metrics = Object.keys(graph.metrics);
  return (
    <form
      className="jp-Mlk-sweepForm"
      onSubmit={e => {
        e.preventDefault();
        void start();
      }}
    >
      <h2 className="jp-Mlk-formTitle">{trans.__('New sweep of %1', path)}</h2>
      <fieldset>
        <legend>{trans.__('Parameters to search')}</legend>
        {form.parameters.length === 0 ? (
          <p className="jp-Mlk-empty">
            {trans.__(
              'This notebook has no parameters cell: tag a cell `parameters` to sweep over its values.'
            )}
          </p>
        ) : (
          <table className="jp-Mlk-searchTable">
            <thead>
              <tr>
                <th>{trans.__('Search')}</th>
                <th>{trans.__('Parameter')}</th>
                <th>{trans.__('Type')}</th>
                <th>{trans.__('Space')}</th>
              </tr>
            </thead>
            <tbody>
              {form.parameters.map((param, i) => (
                <ParameterRow
                  key={param.name}
                  param={param}
                  trans={trans}
                  onChange={patch => setParam(i, patch)}
                />
              ))}
            </tbody>
          </table>
        )}
      </fieldset>
      <fieldset className="jp-Mlk-formRow">
        <legend>{trans.__('Objective')}</legend>
        <label className="jp-Mlk-field">
          <span>{trans.__('Metric')}</span>
          <input
            className="jp-mod-styled"
            name="objective"
            list="jp-Mlk-metricNames"
            value={form.objective}
            placeholder={trans.__('a metric, or a printed name=value')}
            onChange={e => set({ objective: e.target.value })}
          />
          <datalist id="jp-Mlk-metricNames">
            {metrics.map(m => (
              <option key={m} value={m} />
            ))}
          </datalist>
        </label>
        <label className="jp-Mlk-field">
          <span>{trans.__('Goal')}</span>
          <select
            className="jp-mod-styled"
            name="goal"
            value={form.goal}
            onChange={e => set({ goal: e.target.value as ISweepForm['goal'] })}
          >
            <option value="maximize">{trans.__('maximize')}</option>
            <option value="minimize">{trans.__('minimize')}</option>
          </select>
        </label>
        <label className="jp-Mlk-field">
          <span>{trans.__('Stop at (optional)')}</span>
          <input
            className="jp-mod-styled"
            name="target"
            type="number"
            step="any"
            value={form.target}
            onChange={e => set({ target: e.target.value })}
          />
        </label>
      </fieldset>
      <fieldset className="jp-Mlk-formRow">
        <legend>{trans.__('Search and budget')}</legend>
        <label className="jp-Mlk-field">
          <span>{trans.__('Algorithm')}</span>
          <select
            className="jp-mod-styled"
            name="algorithm"
            value={form.algorithm}
            onChange={e => set({ algorithm: e.target.value })}
          >
            {ALGORITHMS.map(a => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </label>
        <NumberField
          name="maxTrials"
          label={trans.__('Max trials')}
          value={form.maxTrials}
          min={1}
          onChange={maxTrials => set({ maxTrials })}
        />
        <NumberField
          name="maxFailed"
          label={trans.__('Max failed')}
          value={form.maxFailed}
          min={0}
          onChange={maxFailed => set({ maxFailed })}
        />
        <NumberField
          name="parallel"
          label={trans.__('Parallel trials')}
          value={form.parallel}
          min={1}
          onChange={parallel => set({ parallel })}
        />
      </fieldset>
      {errors.length > 0 && (
        <ul className="jp-Mlk-formErrors" role="alert">
          {errors.map(error => (
            <li key={error}>{error}</li>
          ))}
        </ul>
      )}
      <div className="jp-Mlk-formActions">
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept jp-Mlk-startSweep"
          disabled={busy}
        >
          {busy ? trans.__('Starting…') : trans.__('Start sweep')}
        </button>
        <span className="jp-Mlk-hint">
          {trans.__('The notebook is saved first; each trial is a run.')}
        </span>
      </div>
    </form>
  );
}

function ParameterRow(props: {
  param: ISweepFormParameter;
  trans: TranslationBundle;
  onChange: (patch: Partial<ISweepFormParameter>) => void;
}): JSX.Element {
  const { param, trans, onChange } = props;
  const ranged = param.kind === 'int' || param.kind === 'double';
  const field = (key: 'min' | 'max' | 'step', placeholder: string) => (
    <input
      className="jp-mod-styled jp-Mlk-rangeInput"
      name={`${param.name}-${key}`}
      aria-label={`${param.name} ${key}`}
      placeholder={placeholder}
      value={param[key]}
      disabled={!param.searched}
      onChange={e => onChange({ [key]: e.target.value })}
    />
  );
  return (
    <tr
      className={`jp-Mlk-paramRow${param.searched ? ' jp-mod-searched' : ''}`}
      data-param={param.name}
    >
      <td>
        <input
          type="checkbox"
          name={`${param.name}-searched`}
          aria-label={trans.__('Search %1', param.name)}
          checked={param.searched}
          onChange={e => onChange({ searched: e.target.checked })}
        />
      </td>
      <td>
        {param.name}
        <span className="jp-Mlk-paramType"> {param.notebookType}</span>
      </td>
      <td>
        <select
          className="jp-mod-styled"
          name={`${param.name}-kind`}
          value={param.kind}
          disabled={!param.searched}
          onChange={e => onChange({ kind: e.target.value as ParameterKind })}
        >
          <option value="int">int</option>
          <option value="double">double</option>
          <option value="categorical">categorical</option>
          <option value="discrete">discrete</option>
        </select>
      </td>
      <td>
        <div className="jp-Mlk-space">
          {ranged ? (
            <>
              {field('min', trans.__('min'))}
              {field('max', trans.__('max'))}
              {field('step', trans.__('step'))}
              <label className="jp-Mlk-check">
                <input
                  type="checkbox"
                  name={`${param.name}-log`}
                  checked={param.log}
                  disabled={!param.searched}
                  onChange={e => onChange({ log: e.target.checked })}
                />
                {trans.__('log')}
              </label>
            </>
          ) : (
            <input
              className="jp-mod-styled jp-Mlk-listInput"
              name={`${param.name}-list`}
              aria-label={`${param.name} values`}
              placeholder={trans.__('values, comma-separated')}
              value={param.list}
              disabled={!param.searched}
              onChange={e => onChange({ list: e.target.value })}
            />
          )}
        </div>
      </td>
    </tr>
  );
}

function NumberField(props: {
  name: string;
  label: string;
  value: string;
  min: number;
  onChange: (value: string) => void;
}): JSX.Element {
  return (
    <label className="jp-Mlk-field">
      <span>{props.label}</span>
      <input
        className="jp-mod-styled jp-Mlk-countInput"
        name={props.name}
        type="number"
        min={props.min}
        step={1}
        value={props.value}
        onChange={e => props.onChange(e.target.value)}
      />
    </label>
  );
}
