/**
 * The steps of the current notebook in order, with their cells, values,
 * parameters, metrics and options; a click selects a step and marks its cells.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { formatValue } from '../format';
import { IGraph, IGraphStep, IMlkModel } from '../tokens';
import { ProblemList } from './ProblemList';
import { useSignals } from './useSignal';

export function StepList(props: {
  model: IMlkModel;
  trans: TranslationBundle;
  serverMissingMessage: string;
}): JSX.Element {
  const { model, trans } = props;
  useSignals(
    model.graphChanged,
    model.selectedStepChanged,
    model.notebookChanged,
    model.serverStatusChanged
  );
  if (model.serverMissing) {
    return (
      <div className="jp-Mlk-notice jp-Mlk-notice-error">
        {props.serverMissingMessage}
      </div>
    );
  }
  if (!model.notebook) {
    return (
      <div className="jp-Mlk-empty">
        {trans.__('Open a notebook to see it as a pipeline.')}
      </div>
    );
  }
  const graph = model.graph;
  return (
    <div className="jp-Mlk-steps">
      {model.graphError && (
        <div className="jp-Mlk-notice jp-Mlk-notice-error">
          {model.graphError}
        </div>
      )}
      {graph && (
        <ProblemList
          errors={graph.errors}
          warnings={graph.warnings}
          trans={trans}
          onReveal={index => model.revealCell(index)}
        />
      )}
      {graph && <StepCards graph={graph} model={model} trans={trans} />}
      {graph && <Parameters graph={graph} trans={trans} />}
      {!graph && !model.graphError && (
        <div className="jp-Mlk-empty">{trans.__('Reading the notebook…')}</div>
      )}
    </div>
  );
}

function StepCards(props: {
  graph: IGraph;
  model: IMlkModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { graph, model, trans } = props;
  return (
    <ol className="jp-Mlk-stepList" aria-label={trans.__('Steps')}>
      {graph.steps.map((step, i) => (
        <StepCard
          key={step.name}
          step={step}
          position={i + 1}
          selected={model.selectedStep === step.name}
          trans={trans}
          onSelect={() =>
            model.selectStep(
              model.selectedStep === step.name ? null : step.name
            )
          }
          onReveal={index => model.revealCell(index)}
        />
      ))}
    </ol>
  );
}

function StepCard(props: {
  step: IGraphStep;
  position: number;
  selected: boolean;
  trans: TranslationBundle;
  onSelect: () => void;
  onReveal: (index: number) => void;
}): JSX.Element {
  const { step, trans } = props;
  const inputs = Object.keys(step.inputs);
  return (
    <li
      className={
        'jp-Mlk-step' + (props.selected ? ' jp-Mlk-step-selected' : '')
      }
      data-step={step.name}
      aria-selected={props.selected}
      onClick={props.onSelect}
    >
      <div className="jp-Mlk-stepHeader">
        <span className="jp-Mlk-stepNumber">{props.position}</span>
        <span className="jp-Mlk-stepName">{step.name}</span>
        {step.condition && (
          <span className="jp-Mlk-chip jp-Mlk-chip-condition">
            {trans.__('if %1', step.condition.text)}
          </span>
        )}
        {resourceChips(step).map(chip => (
          <span key={chip} className="jp-Mlk-chip">
            {chip}
          </span>
        ))}
      </div>
      <dl className="jp-Mlk-stepFacts">
        <dt>{trans.__('Cells')}</dt>
        <dd>
          {step.cells.map(index => (
            <button
              key={index}
              className="jp-Mlk-cellLink"
              title={trans.__('Go to cell %1', index)}
              onClick={event => {
                event.stopPropagation();
                props.onReveal(index);
              }}
            >
              {index}
            </button>
          ))}
        </dd>
        <Fact
          label={trans.__('Inputs')}
          names={inputs}
          title={name => trans.__('from step %1', step.inputs[name])}
        />
        <Fact label={trans.__('Outputs')} names={step.outputs} />
        <Fact
          label={trans.__('Parameters')}
          names={step.params}
          className="jp-Mlk-value-param"
        />
        <Fact
          label={trans.__('Metrics')}
          names={step.metrics}
          className="jp-Mlk-value-metric"
        />
        <Fact label={trans.__('After')} names={step.after} />
      </dl>
    </li>
  );
}

/** One row of a step's facts: a label and the names, or nothing when empty. */
function Fact(props: {
  label: string;
  names: string[];
  className?: string;
  title?: (name: string) => string;
}): JSX.Element | null {
  if (props.names.length === 0) {
    return null;
  }
  return (
    <>
      <dt>{props.label}</dt>
      <dd>
        {props.names.map(name => (
          <span
            key={name}
            className={`jp-Mlk-value ${props.className ?? ''}`}
            title={props.title?.(name)}
          >
            {name}
          </span>
        ))}
      </dd>
    </>
  );
}

function resourceChips(step: IGraphStep): string[] {
  const res = step.resources;
  const chips = Object.keys(res.limits).map(r => `${r} ${res.limits[r]}`);
  if (res.gpus) {
    chips.push(`gpu ${res.gpus}`);
  }
  if (res.image) {
    chips.push(res.image);
  }
  if (!res.cache) {
    chips.push('cache off');
  }
  return chips;
}

function Parameters(props: {
  graph: IGraph;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { graph, trans } = props;
  const metrics = Object.keys(graph.metrics);
  if (graph.parameters.length === 0 && metrics.length === 0) {
    return null;
  }
  return (
    <table className="jp-Mlk-paramTable">
      <caption>{trans.__('Pipeline parameters and metrics')}</caption>
      <tbody>
        {graph.parameters.map(p => (
          <tr key={p.name}>
            <th>{p.name}</th>
            <td className="jp-Mlk-paramType">{p.type}</td>
            <td>{formatValue(p.default)}</td>
          </tr>
        ))}
        {metrics.map(name => (
          <tr key={name}>
            <th>{name}</th>
            <td className="jp-Mlk-paramType">{trans.__('metric')}</td>
            <td>{trans.__('from %1', graph.metrics[name])}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
