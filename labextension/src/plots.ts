/**
 * Vega-Lite specs of a sweep's plots (objective over trials, each parameter
 * against the objective), drawn by JupyterLab's vega renderer; pure.
 */
import { bestTrialNumber } from './sweepForm';
import { ISweep, JSONValue } from './tokens';

/** The mime type JupyterLab's vega extension renders. */
export const VEGALITE_MIME = 'application/vnd.vegalite.v5+json';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

type Spec = { [key: string]: JSONValue };

/** Trials that reported an objective, in trial order. */
function scored(sweep: ISweep) {
  return (sweep.trials ?? [])
    .filter(t => typeof t.objective === 'number' && isFinite(t.objective))
    .sort((a, b) => a.number - b.number);
}

/**
 * The objective of each trial against its number, with the best value so far
 * as a step line and the best trial circled; null while no trial reported.
 */
export function objectivePlotSpec(sweep: ISweep): Spec | null {
  const trials = scored(sweep);
  if (trials.length === 0) {
    return null;
  }
  const minimize = sweep.spec.goal === 'minimize';
  const best = bestTrialNumber(sweep);
  let bestSoFar: number | null = null;
  const values = trials.map(t => {
    const value = t.objective as number;
    if (t.state === 'SUCCEEDED') {
      bestSoFar =
        bestSoFar === null
          ? value
          : minimize
            ? Math.min(bestSoFar, value)
            : Math.max(bestSoFar, value);
    }
    return {
      trial: t.number,
      objective: value,
      state: t.state,
      best: t.number === best,
      bestSoFar
    };
  });
  const name = sweep.spec.objective;
  const x = {
    field: 'trial',
    type: 'quantitative',
    title: 'trial',
    axis: { tickMinStep: 1, format: 'd' }
  };
  return {
    $schema: SCHEMA,
    description: `${name} of each trial of sweep ${sweep.id}`,
    title: `${name} over trials (${sweep.spec.goal})`,
    width: 420,
    height: 200,
    data: { values },
    layer: [
      {
        mark: { type: 'line', interpolate: 'step-after', opacity: 0.6 },
        encoding: {
          x,
          y: { field: 'bestSoFar', type: 'quantitative', title: name }
        }
      },
      {
        mark: { type: 'point', filled: true, size: 60 },
        encoding: {
          x,
          y: {
            field: 'objective',
            type: 'quantitative',
            title: name,
            scale: { zero: false }
          },
          color: {
            condition: {
              test: "datum.state !== 'SUCCEEDED'",
              value: '#d62728'
            },
            value: '#1f77b4'
          },
          tooltip: [
            { field: 'trial', type: 'quantitative' },
            { field: 'objective', type: 'quantitative', title: name },
            { field: 'state', type: 'nominal' }
          ] as Spec[]
        }
      },
      {
        transform: [{ filter: 'datum.best' }],
        mark: { type: 'point', size: 260, strokeWidth: 2, color: '#e6a700' },
        encoding: {
          x,
          y: { field: 'objective', type: 'quantitative' }
        }
      }
    ]
  };
}

/**
 * One scatter per searched parameter, its value against the objective, side
 * by side; ranges on a log scale where the sweep searched them so. Null
 * while no trial reported.
 */
export function parameterPlotSpec(sweep: ISweep): Spec | null {
  const trials = scored(sweep);
  if (trials.length === 0 || sweep.spec.parameters.length === 0) {
    return null;
  }
  const name = sweep.spec.objective;
  const best = bestTrialNumber(sweep);
  const charts = sweep.spec.parameters.map(param => {
    const numeric = param.type === 'int' || param.type === 'double';
    const values = trials.map(t => ({
      trial: t.number,
      value: numeric
        ? Number(t.params[param.name])
        : String(t.params[param.name]),
      objective: t.objective as number,
      best: t.number === best
    }));
    const chart: Spec = {
      title: param.name,
      width: 200,
      height: 160,
      data: { values },
      mark: { type: 'point', filled: true, size: 60 },
      encoding: {
        x: {
          field: 'value',
          type: numeric ? 'quantitative' : 'nominal',
          title: param.name,
          scale: (numeric
            ? { type: param.log ? 'log' : 'linear', zero: false }
            : {}) as Spec
        },
        y: {
          field: 'objective',
          type: 'quantitative',
          title: name,
          scale: { zero: false }
        },
        color: {
          condition: { test: 'datum.best', value: '#e6a700' },
          value: '#1f77b4'
        },
        tooltip: [
          { field: 'trial', type: 'quantitative' },
          { field: 'value', title: param.name },
          { field: 'objective', type: 'quantitative', title: name }
        ] as Spec[]
      }
    };
    return chart;
  });
  return {
    $schema: SCHEMA,
    description: `each parameter of sweep ${sweep.id} against ${name}`,
    hconcat: charts
  };
}
