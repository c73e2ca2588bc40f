/**
 * One run: its state, parameters and metrics, the step graph with live
 * states, and the selected step's logs, metrics and output notebook.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useState } from 'react';

import { deployableOutputs } from '../deployments';
import { elapsed, formatDuration, formatTime, formatValue } from '../format';
import { messageOf } from '../model';
import {
  FINAL_STATES,
  ILogs,
  IMlkApi,
  IRun,
  IRunStep,
  JSONValue,
  IMlkModel
} from '../tokens';
import { RunGraph } from './RunGraph';
import { StateBadge } from './StateBadge';
import { useSignals } from './useSignal';

export interface IRunViewProps {
  model: IMlkModel;
  api: IMlkApi;
  runId: string;
  trans: TranslationBundle;
  onOpenNotebook: (runId: string, step: string) => void;
  onCancel: (runId: string) => void;
  onError: (error: unknown) => void;
  /** Asks for a deployment of a step's value; absent: no deploy buttons. */
  onDeploy?: (runId: string, step: string, variable: string) => void;
}

export function RunView(props: IRunViewProps): JSX.Element {
  const { model, runId, trans } = props;
  useSignals(model.runChanged);
  const run = model.getRun(runId);
  const [selected, setSelected] = useState<string | null>(null);
  const [edges, setEdges] = useState<[string, string][]>([]);
  const now = useClock(run ? !FINAL_STATES.has(run.state) : false);

  useEffect(() => {
    if (run) {
      void edgesOf(run, props.api).then(setEdges);
    }
  }, [runId, !!run?.steps, run?.notebook]);

  if (!run || !run.steps) {
    return <div className="jp-Mlk-empty">{trans.__('Loading run…')}</div>;
  }
  const active = !FINAL_STATES.has(run.state);
  const step = run.steps.find(s => s.name === selected) ?? null;
  return (
    <div className="jp-Mlk-runView" data-run-id={run.id} data-state={run.state}>
      <header className="jp-Mlk-runHeader">
        <div className="jp-Mlk-runTitle">
          <StateBadge state={run.state} trans={trans} />
          <span className="jp-Mlk-runNotebook">{run.notebook}</span>
          <span className="jp-Mlk-runMeta">
            {trans.__(
              'started %1 · %2',
              formatTime(run.started ?? run.created),
              formatDuration(elapsed(run, now))
            )}
          </span>
          <span className="jp-Mlk-spacer" />
          {active && (
            <button
              className="jp-mod-styled jp-mod-warn jp-Mlk-cancel"
              onClick={() => props.onCancel(run.id)}
            >
              {trans.__('Cancel run')}
            </button>
          )}
        </div>
        <Pairs title={trans.__('Parameters')} values={run.params} />
        <Pairs title={trans.__('Metrics')} values={run.metrics} />
        {run.error && (
          <div className="jp-Mlk-notice jp-Mlk-notice-error">{run.error}</div>
        )}
      </header>
      <div className="jp-Mlk-runBody">
        <div className="jp-Mlk-graphPane">
          <RunGraph
            steps={run.steps}
            edges={edges}
            selected={selected}
            now={now}
            trans={trans}
            onSelect={name => setSelected(name === selected ? null : name)}
          />
          <div className="jp-Mlk-legend">
            {trans.__('Select a step to see its logs.')}
          </div>
        </div>
        {step && (
          <StepDetails
            {...props}
            run={run}
            step={step}
            now={now}
            onClose={() => setSelected(null)}
          />
        )}
      </div>
    </div>
  );
}

function StepDetails(
  props: IRunViewProps & {
    run: IRun;
    step: IRunStep;
    now: number;
    onClose: () => void;
  }
): JSX.Element {
  const { run, step, trans, api } = props;
  const [logs, setLogs] = useState<ILogs | null>(null);
  const [logError, setLogError] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    api.getLogs(run.id, step.name).then(
      result => current && (setLogs(result), setLogError(null)),
      error => current && setLogError(messageOf(error))
    );
    return () => {
      current = false;
    };
  }, [run.id, step.name, step.state, step.finished]);
  const hasNotebook = step.state !== 'PENDING' && step.state !== 'SKIPPED';
  const metrics = step.metrics ?? {};
  return (
    <section className="jp-Mlk-stepDetails" data-step={step.name}>
      <div className="jp-Mlk-runTitle">
        <span className="jp-Mlk-stepName">{step.name}</span>
        <StateBadge state={step.state} trans={trans} />
        <span className="jp-Mlk-runMeta">
          {formatDuration(elapsed(step, props.now))}
          {step.cached_from
            ? ` · ${trans.__('cached from run %1', step.cached_from.slice(0, 8))}`
            : ''}
        </span>
        <span className="jp-Mlk-spacer" />
        {hasNotebook && (
          <button
            className="jp-mod-styled jp-Mlk-openNotebook"
            onClick={() => props.onOpenNotebook(run.id, step.name)}
          >
            {trans.__('Open output notebook')}
          </button>
        )}
        <button
          className="jp-mod-styled jp-Mlk-closeDetails"
          title={trans.__('Close')}
          onClick={props.onClose}
        >
          ✕
        </button>
      </div>
      <Pairs title={trans.__('Metrics')} values={metrics} />
      {props.onDeploy && (
        <StepOutputs
          names={deployableOutputs(run, step)}
          trans={trans}
          onDeploy={variable => props.onDeploy?.(run.id, step.name, variable)}
        />
      )}
      {step.error && (
        <pre className="jp-Mlk-notice jp-Mlk-notice-error">
          {describeStepError(step.error)}
        </pre>
      )}
      {logError && <div className="jp-Mlk-notice">{logError}</div>}
      {logs && (
        <div className="jp-Mlk-logs">
          <div className="jp-Mlk-logTitle">{trans.__('Output')}</div>
          <pre className="jp-Mlk-log jp-Mlk-stdout">
            {logs.stdout || trans.__('(nothing printed)')}
          </pre>
          {logs.stderr && (
            <>
              <div className="jp-Mlk-logTitle">
                {trans.__('Errors and warnings')}
              </div>
              <pre className="jp-Mlk-log jp-Mlk-stderr">{logs.stderr}</pre>
            </>
          )}
        </div>
      )}
    </section>
  );
}

/** A finished step's values, each with a button to deploy it as a model. */
function StepOutputs(props: {
  names: string[];
  trans: TranslationBundle;
  onDeploy: (variable: string) => void;
}): JSX.Element | null {
  const { names, trans } = props;
  if (names.length === 0) {
    return null;
  }
  return (
    <div className="jp-Mlk-pairs jp-Mlk-stepOutputs">
      <span className="jp-Mlk-pairsTitle">{trans.__('Outputs')}</span>
      {names.map(name => (
        <span key={name} className="jp-Mlk-pair" data-output={name}>
          <span className="jp-Mlk-pairName">{name}</span>
          <button
            className="jp-mod-styled jp-Mlk-deployOutput"
            title={trans.__('Serve %1 as a model', name)}
            onClick={() => props.onDeploy(name)}
          >
            {trans.__('Deploy…')}
          </button>
        </span>
      ))}
    </div>
  );
}

function Pairs(props: {
  title: string;
  values: { [name: string]: JSONValue };
}): JSX.Element | null {
  const names = Object.keys(props.values).sort();
  if (names.length === 0) {
    return null;
  }
  return (
    <div className="jp-Mlk-pairs">
      <span className="jp-Mlk-pairsTitle">{props.title}</span>
      {names.map(name => (
        <span key={name} className="jp-Mlk-pair">
          <span className="jp-Mlk-pairName">{name}</span>
          <span className="jp-Mlk-pairValue">
            {formatValue(props.values[name])}
          </span>
        </span>
      ))}
    </div>
  );
}

/** Epoch seconds, ticking every second while `running`. */
function useClock(running: boolean): number {
  const [now, setNow] = useState(Date.now() / 1000);
  useEffect(() => {
    if (!running) {
      setNow(Date.now() / 1000);
      return;
    }
    const timer = setInterval(() => setNow(Date.now() / 1000), 1000);
    return () => clearInterval(timer);
  }, [running]);
  return now;
}

/**
 * The edges of a run's graph: the graph stored with the run when the server
 * sends it, else the notebook's graph as it is now.
 */
async function edgesOf(run: IRun, api: IMlkApi): Promise<[string, string][]> {
  if (run.edges) {
    return run.edges;
  }
  if (run.graph?.edges) {
    return run.graph.edges;
  }
  try {
    return (await api.getGraph(run.notebook)).edges;
  } catch {
    return [];
  }
}

/** A step's error as a person reads it: what, where, then the traceback. */
export function describeStepError(error: { [key: string]: JSONValue }): string {
  const text = (key: string): string =>
    error[key] === undefined || error[key] === null ? '' : String(error[key]);
  if (!error['ename'] && error['reason']) {
    return text('reason');
  }
  const where: string[] = [];
  if (text('cell_index')) {
    where.push(`cell ${text('cell_index')} (id ${text('cell_id')})`);
  }
  if (text('line')) {
    where.push(`line ${text('line')}`);
  }
  const head = `${text('ename') || 'Error'}: ${text('evalue') || text('message')}`;
  const lines = [head];
  if (where.length) {
    lines.push(
      `in ${where.join(', ')}` +
        (text('source_line') ? `: ${text('source_line').trim()}` : '')
    );
  }
  if (text('traceback')) {
    lines.push('', text('traceback'));
  }
  return lines.join('\n');
}
