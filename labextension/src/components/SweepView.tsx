/**
 * One sweep: its state and budget, the trials with their live states and the
 * best one highlighted, and the plots of the objective.
 */
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { formatTime, formatValue, shortId } from '../format';
import { objectivePlotSpec, parameterPlotSpec } from '../plots';
import { bestTrialNumber } from '../sweepForm';
import { SWEEP_FINAL_STATES, SweepsModel } from '../sweeps';
import { ISweep, ITrial } from '../tokens';
import { StateBadge } from './StateBadge';
import { useSignals } from './useSignal';
import { VegaPlot } from './VegaPlot';

export interface ISweepViewProps {
  sweeps: SweepsModel;
  sweepId: string;
  trans: TranslationBundle;
  rendermime: IRenderMimeRegistry | null;
  onCancel: (sweepId: string) => void;
  onUseValues: (sweep: ISweep, trial: ITrial) => void;
  onOpenRun: (runId: string) => void;
}

export function SweepView(props: ISweepViewProps): JSX.Element {
  const { sweeps, sweepId, trans } = props;
  useSignals(sweeps.sweepChanged, sweeps.sweepsChanged);
  const sweep = sweeps.getSweep(sweepId);
  if (!sweep) {
    return <div className="jp-Mlk-empty">{trans.__('Loading sweep…')}</div>;
  }
  const trials = sweep.trials ?? [];
  const best = bestTrialNumber(sweep);
  const bestTrial = trials.find(t => t.number === best);
  const objectiveSpec = objectivePlotSpec(sweep);
  const paramSpec = parameterPlotSpec(sweep);
  const names = sweep.spec.parameters.map(p => p.name);
  const active = !SWEEP_FINAL_STATES.has(sweep.state);
  const done = trials.filter(t => SWEEP_FINAL_STATES.has(t.state)).length;
  return (
    <div className="jp-Mlk-sweepView" data-state={sweep.state}>
      <div className="jp-Mlk-sweepHeader">
        <StateBadge state={sweep.state} trans={trans} />
        <span className="jp-Mlk-sweepTitle">
          {trans.__('Sweep %1', sweep.id)}
        </span>
        <span className="jp-Mlk-runMeta">{sweep.notebook}</span>
        <span className="jp-Mlk-runMeta">{formatTime(sweep.created)}</span>
        {active && (
          <button
            className="jp-mod-styled jp-mod-warn jp-Mlk-cancelSweep"
            onClick={() => props.onCancel(sweep.id)}
          >
            {trans.__('Cancel')}
          </button>
        )}
      </div>
      <div className="jp-Mlk-sweepSummary">
        <span>
          <span className="jp-Mlk-runKey">{trans.__('objective')}</span>{' '}
          {sweep.spec.goal} {sweep.spec.objective}
          {sweep.spec.target !== null && sweep.spec.target !== undefined
            ? ` → ${sweep.spec.target}`
            : ''}
        </span>
        <span>
          <span className="jp-Mlk-runKey">{trans.__('algorithm')}</span>{' '}
          {sweep.spec.algorithm}
        </span>
        <span>
          <span className="jp-Mlk-runKey">{trans.__('trials')}</span>{' '}
          {trans.__(
            '%1 of %2 done, %3 at a time',
            done,
            sweep.spec.max_trials,
            sweep.spec.parallel
          )}
        </span>
        {sweep.reason && (
          <span>
            <span className="jp-Mlk-runKey">{trans.__('ended')}</span>{' '}
            {sweep.reason}
          </span>
        )}
      </div>
      {bestTrial && (
        <div className="jp-Mlk-bestSummary" data-trial={bestTrial.number}>
          <span className="jp-Mlk-bestMark">★</span>
          {trans.__(
            'Best: trial %1, %2 = %3',
            bestTrial.number,
            sweep.spec.objective,
            formatValue(bestTrial.objective ?? null)
          )}
          <span className="jp-Mlk-runMeta">
            {names
              .map(n => `${n}=${formatValue(bestTrial.params[n])}`)
              .join(', ')}
          </span>
          <button
            className="jp-mod-styled jp-Mlk-useValues"
            onClick={() => props.onUseValues(sweep, bestTrial)}
          >
            {trans.__('Use these values')}
          </button>
        </div>
      )}
      <table className="jp-Mlk-trials" aria-label={trans.__('Trials')}>
        <thead>
          <tr>
            <th>#</th>
            <th>{trans.__('state')}</th>
            {names.map(n => (
              <th key={n}>{n}</th>
            ))}
            <th>{sweep.spec.objective}</th>
            <th>{trans.__('run')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {trials.map(trial => (
            <TrialRow
              key={trial.number}
              trial={trial}
              names={names}
              isBest={trial.number === best}
              trans={trans}
              onUseValues={() => props.onUseValues(sweep, trial)}
              onOpenRun={props.onOpenRun}
            />
          ))}
        </tbody>
      </table>
      {trials.length === 0 && (
        <div className="jp-Mlk-empty">
          {trans.__('No trial has started yet.')}
        </div>
      )}
      {objectiveSpec ? (
        <div className="jp-Mlk-plots">
          <VegaPlot
            className="jp-Mlk-objectivePlot"
            spec={objectiveSpec}
            rendermime={props.rendermime}
            trans={trans}
          />
          {paramSpec && (
            <VegaPlot
              className="jp-Mlk-paramPlot"
              spec={paramSpec}
              rendermime={props.rendermime}
              trans={trans}
            />
          )}
        </div>
      ) : (
        <div className="jp-Mlk-empty">
          {trans.__(
            'The plots appear once a trial reports %1.',
            sweep.spec.objective
          )}
        </div>
      )}
    </div>
  );
}

function TrialRow(props: {
  trial: ITrial;
  names: string[];
  isBest: boolean;
  trans: TranslationBundle;
  onUseValues: () => void;
  onOpenRun: (runId: string) => void;
}): JSX.Element {
  const { trial, trans } = props;
  const runId = trial.run_id;
  return (
    <tr
      className={`jp-Mlk-trial${props.isBest ? ' jp-mod-best' : ''}`}
      data-trial={trial.number}
      data-state={trial.state}
      title={trial.error ?? undefined}
    >
      <td>
        {trial.number}
        {props.isBest && (
          <span className="jp-Mlk-bestMark" title={trans.__('Best trial')}>
            {' '}
            ★
          </span>
        )}
      </td>
      <td>
        <StateBadge state={trial.state} trans={trans} />
      </td>
      {props.names.map(n => (
        <td key={n} className="jp-Mlk-num">
          {formatValue(trial.params[n])}
        </td>
      ))}
      <td className="jp-Mlk-num jp-Mlk-objective">
        {trial.objective === null || trial.objective === undefined ? (
          trial.error ? (
            <span className="jp-Mlk-trialError">{trial.error}</span>
          ) : (
            '—'
          )
        ) : (
          formatValue(trial.objective)
        )}
      </td>
      <td>
        {runId && (
          <button
            className="jp-Mlk-linkButton"
            title={trans.__('Open run %1', runId)}
            onClick={() => props.onOpenRun(runId)}
          >
            {shortId(runId)}
          </button>
        )}
      </td>
      <td>
        <button
          className="jp-Mlk-linkButton jp-Mlk-useValues"
          onClick={props.onUseValues}
        >
          {trans.__('Use these values')}
        </button>
      </td>
    </tr>
  );
}
