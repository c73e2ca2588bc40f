/**
 * Tags of the active cell as a form: its role or step, skip, and the step's
 * options (prev: edges, condition, resources). Every change is written to the
 * cell's metadata at once and the graph is fetched again.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useState } from 'react';

import {
  CellRole,
  conditionProblem,
  parseTags,
  quantityProblem,
  setCacheOff,
  setCondition,
  setGpus,
  setImage,
  setLimit,
  setPrev,
  setRole,
  setSkip,
  setStep,
  stepNameProblem
} from '../tags';
import { IMlkModel } from '../tokens';
import { useSignals } from './useSignal';

const NEW_STEP = '\u0000new';
const CONTINUE = '';

export function CellTagEditor(props: {
  model: IMlkModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, trans } = props;
  useSignals(
    model.activeCellChanged,
    model.graphChanged,
    model.notebookChanged
  );
  const cell = model.activeCell;
  if (!model.notebook || !cell) {
    return (
      <div className="jp-Mlk-empty">{trans.__('Select a cell to tag it.')}</div>
    );
  }
  if (cell.cellType !== 'code') {
    return (
      <div className="jp-Mlk-empty">
        {trans.__('Only code cells belong to steps.')}
      </div>
    );
  }
  return <CellForm key={cell.id} model={model} trans={trans} />;
}

function CellForm(props: {
  model: IMlkModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, trans } = props;
  const cell = model.activeCell!;
  const tags = cell.tags;
  const parsed = parseTags(tags);
  const steps = model.graph?.steps ?? [];
  const names = steps.map(s => s.name);
  const owner = steps.find(s => s.cells.includes(cell.index));
  const [creating, setCreating] = useState(false);
  const write = (next: string[]) => model.setCellTags(next);

  const onRole = (value: string) =>
    write(setRole(tags, value ? (value as CellRole) : null));
  const onStep = (value: string) => {
    if (value === NEW_STEP) {
      setCreating(true);
      return;
    }
    setCreating(false);
    write(setStep(tags, value === CONTINUE ? null : value));
  };
  const continues = owner && owner.name !== parsed.step ? owner.name : null;
  return (
    <div className="jp-Mlk-form" data-cell-index={cell.index}>
      <div className="jp-Mlk-formTitle">
        {trans.__('Cell %1', cell.index)}
        <code className="jp-Mlk-rawTags" title={trans.__('The cell tags')}>
          {tags.length ? tags.join('  ') : trans.__('no tags')}
        </code>
      </div>
      <label className="jp-Mlk-field">
        <span>{trans.__('Role')}</span>
        <select
          className="jp-mod-styled jp-Mlk-roleSelect"
          value={parsed.role ?? ''}
          onChange={e => onRole(e.target.value)}
        >
          <option value="">{trans.__('Step code')}</option>
          <option value="imports">{trans.__('Imports (every step)')}</option>
          <option value="functions">
            {trans.__('Functions (every step)')}
          </option>
          <option value="parameters">{trans.__('Pipeline parameters')}</option>
          <option value="metrics">{trans.__('Pipeline metrics')}</option>
        </select>
      </label>
      {parsed.role === null && (
        <label className="jp-Mlk-field">
          <span>{trans.__('Step')}</span>
          <select
            className="jp-mod-styled jp-Mlk-stepSelect"
            value={creating ? NEW_STEP : (parsed.step ?? CONTINUE)}
            onChange={e => onStep(e.target.value)}
          >
            <option value={CONTINUE}>
              {continues
                ? trans.__('Continue step %1', continues)
                : trans.__('Continue the step above')}
            </option>
            {names.map(name => (
              <option key={name} value={name}>
                {trans.__('Step %1', name)}
              </option>
            ))}
            {parsed.step && !names.includes(parsed.step) && (
              <option value={parsed.step}>
                {trans.__('Step %1', parsed.step)}
              </option>
            )}
            <option value={NEW_STEP}>{trans.__('New step…')}</option>
          </select>
        </label>
      )}
      {creating && (
        <NewStepField
          existing={names}
          trans={trans}
          onCreate={name => {
            setCreating(false);
            write(setStep(tags, name));
          }}
          onCancel={() => setCreating(false)}
        />
      )}
      <label className="jp-Mlk-check">
        <input
          type="checkbox"
          className="jp-Mlk-skip"
          checked={parsed.skip}
          onChange={e => write(setSkip(tags, e.target.checked))}
        />
        {trans.__('Skip this cell (never analysed, never run)')}
      </label>
      {parsed.step !== null && parsed.role === null && (
        <StepOptions
          tags={tags}
          stepNames={names.filter(n => n !== parsed.step)}
          trans={trans}
          write={write}
        />
      )}
    </div>
  );
}

function NewStepField(props: {
  existing: string[];
  trans: TranslationBundle;
  onCreate: (name: string) => void;
  onCancel: () => void;
}): JSX.Element {
  const { trans } = props;
  const [name, setName] = useState('');
  const [touched, setTouched] = useState(false);
  const problem = stepNameProblem(name, props.existing);
  const submit = () => {
    setTouched(true);
    if (!problem) {
      props.onCreate(name.trim());
    }
  };
  return (
    <div className="jp-Mlk-field jp-Mlk-newStep">
      <span>{trans.__('Name')}</span>
      <div className="jp-Mlk-inline">
        <input
          className="jp-mod-styled jp-Mlk-newStepName"
          autoFocus
          placeholder={trans.__('e.g. preprocess')}
          value={name}
          onChange={e => setName(e.target.value)}
          onKeyDown={e => {
            if (e.key === 'Enter') {
              submit();
            } else if (e.key === 'Escape') {
              props.onCancel();
            }
          }}
        />
        <button
          className="jp-mod-styled jp-mod-accept jp-Mlk-createStep"
          onClick={submit}
        >
          {trans.__('Create')}
        </button>
      </div>
      {touched && problem && (
        <div className="jp-Mlk-fieldError">{trans.__(problem)}</div>
      )}
    </div>
  );
}

function StepOptions(props: {
  tags: string[];
  stepNames: string[];
  trans: TranslationBundle;
  write: (tags: string[]) => void;
}): JSX.Element {
  const { tags, trans, write } = props;
  const parsed = parseTags(tags);
  const togglePrev = (name: string, on: boolean) =>
    write(
      setPrev(
        tags,
        on ? [...parsed.prev, name] : parsed.prev.filter(p => p !== name)
      )
    );
  return (
    <fieldset className="jp-Mlk-stepOptions">
      <legend>{trans.__('Step options')}</legend>
      {props.stepNames.length > 0 && (
        <div className="jp-Mlk-field">
          <span>{trans.__('Runs after (prev:)')}</span>
          <div className="jp-Mlk-prevList">
            {props.stepNames.map(name => (
              <label key={name} className="jp-Mlk-check">
                <input
                  type="checkbox"
                  checked={parsed.prev.includes(name)}
                  onChange={e => togglePrev(name, e.target.checked)}
                />
                {name}
              </label>
            ))}
          </div>
        </div>
      )}
      <TextField
        label={trans.__('Condition (if:)')}
        value={parsed.condition ?? ''}
        placeholder="accuracy>=0.9"
        validate={conditionProblem}
        trans={trans}
        onCommit={v => write(setCondition(tags, v))}
      />
      <div className="jp-Mlk-row">
        <TextField
          label={trans.__('CPU limit')}
          value={parsed.limits['cpu'] ?? ''}
          placeholder="2"
          validate={quantityProblem}
          trans={trans}
          onCommit={v => write(setLimit(tags, 'cpu', v))}
        />
        <TextField
          label={trans.__('Memory limit')}
          value={parsed.limits['memory'] ?? ''}
          placeholder="4Gi"
          validate={quantityProblem}
          trans={trans}
          onCommit={v => write(setLimit(tags, 'memory', v))}
        />
      </div>
      <div className="jp-Mlk-row">
        <TextField
          label={trans.__('GPUs')}
          value={parsed.gpus ? String(parsed.gpus) : ''}
          placeholder="0"
          validate={v =>
            v.trim() && !/^\d+$/.test(v.trim()) ? 'A whole number.' : null
          }
          trans={trans}
          onCommit={v =>
            write(setGpus(tags, v.trim() ? parseInt(v, 10) : null))
          }
        />
        <TextField
          label={trans.__('Image')}
          value={parsed.image ?? ''}
          placeholder="python:3.11"
          validate={v => (/\s/.test(v.trim()) ? 'No spaces.' : null)}
          trans={trans}
          onCommit={v => write(setImage(tags, v))}
        />
      </div>
      <label className="jp-Mlk-check">
        <input
          type="checkbox"
          checked={parsed.cacheOff}
          onChange={e => write(setCacheOff(tags, e.target.checked))}
        />
        {trans.__('Always run (cache:off)')}
      </label>
    </fieldset>
  );
}

/** A text input that writes its value on Enter or when it loses focus. */
function TextField(props: {
  label: string;
  value: string;
  placeholder: string;
  validate: (value: string) => string | null;
  trans: TranslationBundle;
  onCommit: (value: string) => void;
}): JSX.Element {
  const [text, setText] = useState(props.value);
  useEffect(() => setText(props.value), [props.value]);
  const problem = props.validate(text);
  const commit = () => {
    if (!problem && text.trim() !== props.value) {
      props.onCommit(text.trim());
    }
  };
  return (
    <label className="jp-Mlk-field">
      <span>{props.label}</span>
      <input
        className={'jp-mod-styled' + (problem ? ' jp-Mlk-invalid' : '')}
        value={text}
        placeholder={props.placeholder}
        onChange={e => setText(e.target.value)}
        onBlur={commit}
        onKeyDown={e => {
          if (e.key === 'Enter') {
            commit();
          }
        }}
      />
      {problem && (
        <span className="jp-Mlk-fieldError">{props.trans.__(problem)}</span>
      )}
    </label>
  );
}
