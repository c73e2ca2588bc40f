/**
 * The sweep form's state, prefilled from a notebook's graph, and the
 * POST /mlk/api/sweeps body built from it; pure, so the unit tests cover it.
 */
import {
  IGraph,
  IGraphParameter,
  IKatibParameter,
  ISweep,
  ISweepRequest,
  ITrial,
  JSONValue
} from './tokens';

/** The Katib algorithm names the local backend maps to Optuna (README). */
export const ALGORITHMS = [
  'random',
  'grid',
  'tpe',
  'multivariate-tpe',
  'cmaes',
  'sobol',
  'bayesianoptimization',
  'hyperband'
] as const;

export type ParameterKind = IKatibParameter['parameterType'];

/** One notebook parameter in the form, as typed: searched or not. */
export interface ISweepFormParameter {
  name: string;
  /** The notebook's type of it (`int`, `float`, `str`, `bool`, ...). */
  notebookType: string;
  searched: boolean;
  kind: ParameterKind;
  min: string;
  max: string;
  step: string;
  log: boolean;
  /** Comma-separated values of a categorical or discrete parameter. */
  list: string;
}

/** Everything the form holds, as the user typed it. */
export interface ISweepForm {
  parameters: ISweepFormParameter[];
  objective: string;
  goal: 'maximize' | 'minimize';
  /** Stop when the objective reaches this (Katib's `objective.goal`). */
  target: string;
  algorithm: string;
  maxTrials: string;
  maxFailed: string;
  parallel: string;
}

/** A request, or the problems that keep the form from making one. */
export type SweepRequestResult =
  { request: ISweepRequest; errors: [] } | { request: null; errors: string[] };

/** Metric names that are better small. */
const LOWER_IS_BETTER = /(loss|error|err|mse|rmse|mae|mape|perplexity)$/i;

/** The form for a notebook: its parameters with ranges around the defaults. */
export function defaultSweepForm(graph: IGraph): ISweepForm {
  const parameters = graph.parameters.map(defaultParameter);
  const first = parameters.find(p => p.kind === 'int' || p.kind === 'double');
  if (first) {
    first.searched = true;
  }
  const objective = Object.keys(graph.metrics)[0] ?? '';
  return {
    parameters,
    objective,
    goal: LOWER_IS_BETTER.test(objective) ? 'minimize' : 'maximize',
    target: '',
    algorithm: 'tpe',
    maxTrials: '12',
    maxFailed: '3',
    parallel: '1'
  };
}

/** A parameter's search space guessed from its type and default. */
export function defaultParameter(param: IGraphParameter): ISweepFormParameter {
  const base: ISweepFormParameter = {
    name: param.name,
    notebookType: param.type,
    searched: false,
    kind: 'categorical',
    min: '',
    max: '',
    step: '',
    log: false,
    list: ''
  };
  const value = param.default;
  if (param.choices && param.choices.length) {
    const kind = param.choices.every(c => typeof c === 'number')
      ? 'discrete'
      : 'categorical';
    return { ...base, kind, list: param.choices.map(textOf).join(', ') };
  }
  if (param.type === 'int' && typeof value === 'number') {
    const [min, max] =
      value > 0 ? [Math.max(1, Math.floor(value / 2)), value * 2] : [0, 10];
    return { ...base, kind: 'int', min: String(min), max: String(max) };
  }
  if (param.type === 'float' && typeof value === 'number') {
    if (value > 0) {
      return {
        ...base,
        kind: 'double',
        min: formatNumber(value / 10),
        max: formatNumber(value * 10),
        log: true
      };
    }
    return { ...base, kind: 'double', min: '0', max: '1' };
  }
  if (param.type === 'bool') {
    return { ...base, list: 'true, false' };
  }
  return { ...base, list: textOf(value) };
}

/**
 * The body of POST /mlk/api/sweeps for the notebook at `path`, or every
 * problem of the form, each naming its field.
 */
export function buildSweepRequest(
  form: ISweepForm,
  path: string
): SweepRequestResult {
  const errors: string[] = [];
  const parameters: IKatibParameter[] = [];
  for (const param of form.parameters.filter(p => p.searched)) {
    const built = katibParameter(param, errors);
    if (built) {
      parameters.push(built);
    }
  }
  if (form.parameters.every(p => !p.searched)) {
    errors.push('Choose at least one parameter to search.');
  }
  const objective = form.objective.trim();
  if (!objective) {
    errors.push('Name the objective: the metric the trials report.');
  }
  const maxTrials = wholeNumber(form.maxTrials, 'Max trials', 1, errors);
  const maxFailed = wholeNumber(form.maxFailed, 'Max failed trials', 0, errors);
  const parallel = wholeNumber(form.parallel, 'Parallel trials', 1, errors);
  let target: number | undefined;
  if (form.target.trim()) {
    target = Number(form.target);
    if (!isFinite(target)) {
      errors.push(`Goal value: "${form.target}" is not a number.`);
    }
  }
  if (!ALGORITHMS.includes(form.algorithm as (typeof ALGORITHMS)[number])) {
    errors.push(
      `Algorithm: "${form.algorithm}"; use one of ${ALGORITHMS.join(', ')}.`
    );
  }
  if (errors.length) {
    return { request: null, errors };
  }
  const request: ISweepRequest = {
    path,
    objective,
    goal: form.goal,
    algorithm: form.algorithm,
    max_trials: maxTrials!,
    max_failed: maxFailed!,
    parallel: parallel!,
    parameters
  };
  if (target !== undefined) {
    request.target = target;
  }
  return { request, errors: [] };
}

function katibParameter(
  param: ISweepFormParameter,
  errors: string[]
): IKatibParameter | null {
  const { name, kind } = param;
  if (kind === 'categorical' || kind === 'discrete') {
    const list = splitList(param.list);
    if (list.length === 0) {
      errors.push(`${name}: list at least one value.`);
      return null;
    }
    const bad = list.filter(v => kind === 'discrete' && !isFinite(Number(v)));
    if (bad.length) {
      errors.push(
        `${name}: discrete values must be numbers, not ${bad.join(', ')}.`
      );
      return null;
    }
    return { name, parameterType: kind, feasibleSpace: { list } };
  }
  const count = errors.length;
  const min = rangeNumber(param.min, `${name} min`, errors);
  const max = rangeNumber(param.max, `${name} max`, errors);
  const step = param.step.trim()
    ? rangeNumber(param.step, `${name} step`, errors)
    : null;
  if (errors.length > count || min === null || max === null) {
    return null;
  }
  if (min > max) {
    errors.push(`${name}: min ${min} is above max ${max}.`);
  }
  if (kind === 'int' && (!Number.isInteger(min) || !Number.isInteger(max))) {
    errors.push(`${name}: an int range needs whole min and max.`);
  }
  if (param.log && min <= 0) {
    errors.push(`${name}: a log scale needs min above 0.`);
  }
  if (step !== null && step <= 0) {
    errors.push(`${name}: step must be above 0.`);
  }
  if (errors.length > count) {
    return null;
  }
  const feasibleSpace: IKatibParameter['feasibleSpace'] = {
    min: param.min.trim(),
    max: param.max.trim()
  };
  if (step !== null) {
    feasibleSpace.step = param.step.trim();
  }
  if (param.log) {
    feasibleSpace.distribution = 'logUniform';
  }
  return { name, parameterType: kind, feasibleSpace };
}

function rangeNumber(
  text: string,
  field: string,
  errors: string[]
): number | null {
  const value = Number(text.trim());
  if (!text.trim() || !isFinite(value)) {
    errors.push(`${field}: "${text}" is not a number.`);
    return null;
  }
  return value;
}

function wholeNumber(
  text: string,
  field: string,
  least: number,
  errors: string[]
): number | null {
  const value = Number(text.trim());
  if (!text.trim() || !Number.isInteger(value) || value < least) {
    errors.push(
      `${field}: "${text}" must be a whole number of at least ${least}.`
    );
    return null;
  }
  return value;
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map(v => v.trim())
    .filter(v => v !== '');
}

function textOf(value: JSONValue): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function formatNumber(value: number): string {
  return String(Number(value.toPrecision(6)));
}

/**
 * The best trial so far: the server's once the sweep ended, else the
 * succeeded trial with the best objective for the sweep's goal.
 */
export function bestTrialNumber(sweep: ISweep): number | null {
  if (sweep.best) {
    return sweep.best.number;
  }
  let best: ITrial | null = null;
  const better = (a: number, b: number) =>
    sweep.spec.goal === 'minimize' ? a < b : a > b;
  for (const trial of sweep.trials ?? []) {
    if (trial.state !== 'SUCCEEDED' || typeof trial.objective !== 'number') {
      continue;
    }
    if (!best || better(trial.objective, best.objective!)) {
      best = trial;
    }
  }
  return best ? best.number : null;
}

/** A trial's values as the run form types them (`true`, `0.01`, `rf`). */
export function trialParamTexts(trial: ITrial): { [name: string]: string } {
  return Object.fromEntries(
    Object.entries(trial.params).map(([name, value]) => [name, textOf(value)])
  );
}
