import { objectivePlotSpec, parameterPlotSpec } from '../plots';
import {
  bestTrialNumber,
  buildSweepRequest,
  defaultParameter,
  defaultSweepForm,
  ISweepForm,
  trialParamTexts
} from '../sweepForm';
import { IGraph, IGraphParameter, ISweep, JSONValue } from '../tokens';

function param(
  name: string,
  type: string,
  value: JSONValue,
  choices: JSONValue[] | null = null
): IGraphParameter {
  return {
    name,
    type,
    default: value,
    source: JSON.stringify(value),
    annotation: null,
    choices,
    cell_index: 1
  };
}

function graphWith(
  parameters: IGraphParameter[],
  metrics: { [name: string]: string }
): IGraph {
  return {
    schema_version: 1,
    notebook: 'nb.ipynb',
    steps: [],
    edges: [],
    parameters,
    metrics,
    errors: [],
    warnings: []
  };
}

function sweepOf(overrides: Partial<ISweep> = {}): ISweep {
  return {
    id: 's-20260101-120000-abcd',
    notebook: 'nb.ipynb',
    state: 'RUNNING',
    spec: {
      objective: 'accuracy',
      goal: 'maximize',
      algorithm: 'random',
      parallel: 1,
      max_trials: 3,
      max_failed: 1,
      parameters: [
        { name: 'lr', type: 'double', min: 0.001, max: 0.1, log: true },
        { name: 'model', type: 'categorical', values: ['rf', 'gbt'] }
      ]
    },
    trials: [
      {
        number: 0,
        params: { lr: 0.01, model: 'rf' },
        state: 'SUCCEEDED',
        objective: 0.8
      },
      {
        number: 1,
        params: { lr: 0.05, model: 'gbt' },
        state: 'SUCCEEDED',
        objective: 0.9
      },
      {
        number: 2,
        params: { lr: 0.002, model: 'rf' },
        state: 'FAILED',
        objective: null,
        error: 'objective accuracy was not reported'
      },
      { number: 3, params: { lr: 0.02, model: 'rf' }, state: 'RUNNING' }
    ],
    ...overrides
  };
}

describe('defaultSweepForm', () => {
  it('searches the first numeric parameter and objects to the first metric', () => {
    const form = defaultSweepForm(
      graphWith(
        [
          param('name', 'str', 'x'),
          param('n', 'int', 50),
          param('lr', 'float', 0.01)
        ],
        { accuracy: 'evaluate' }
      )
    );
    expect(form.parameters.map(p => [p.name, p.searched])).toEqual([
      ['name', false],
      ['n', true],
      ['lr', false]
    ]);
    expect(form.objective).toBe('accuracy');
    expect(form.goal).toBe('maximize');
  });

  it('minimizes a loss', () => {
    const form = defaultSweepForm(graphWith([], { val_loss: 'train' }));
    expect(form.goal).toBe('minimize');
  });

  it('guesses ranges from the defaults', () => {
    expect(defaultParameter(param('n', 'int', 50))).toMatchObject({
      kind: 'int',
      min: '25',
      max: '100'
    });
    expect(defaultParameter(param('lr', 'float', 0.01))).toMatchObject({
      kind: 'double',
      min: '0.001',
      max: '0.1',
      log: true
    });
    expect(defaultParameter(param('flag', 'bool', true))).toMatchObject({
      kind: 'categorical',
      list: 'true, false'
    });
    expect(
      defaultParameter(param('model', 'str', 'rf', ['rf', 'gbt']))
    ).toMatchObject({ kind: 'categorical', list: 'rf, gbt' });
    expect(defaultParameter(param('k', 'int', 3, [1, 3, 5]))).toMatchObject({
      kind: 'discrete',
      list: '1, 3, 5'
    });
  });
});

describe('buildSweepRequest', () => {
  const base = (): ISweepForm =>
    defaultSweepForm(
      graphWith(
        [
          param('n', 'int', 50),
          param('lr', 'float', 0.01),
          param('model', 'str', 'rf')
        ],
        { accuracy: 'evaluate' }
      )
    );

  it('writes Katib parameters and the budget', () => {
    const form = base();
    form.parameters[1].searched = true;
    form.parameters[2].searched = true;
    form.parameters[2].list = 'rf, gbt,';
    form.parameters[0].step = '5';
    Object.assign(form, {
      algorithm: 'random',
      maxTrials: '3',
      parallel: '1',
      maxFailed: '0',
      target: '0.95'
    });
    const result = buildSweepRequest(form, 'dir/nb.ipynb');
    expect(result.errors).toEqual([]);
    expect(result.request).toEqual({
      path: 'dir/nb.ipynb',
      objective: 'accuracy',
      goal: 'maximize',
      target: 0.95,
      algorithm: 'random',
      max_trials: 3,
      max_failed: 0,
      parallel: 1,
      parameters: [
        {
          name: 'n',
          parameterType: 'int',
          feasibleSpace: { min: '25', max: '100', step: '5' }
        },
        {
          name: 'lr',
          parameterType: 'double',
          feasibleSpace: {
            min: '0.001',
            max: '0.1',
            distribution: 'logUniform'
          }
        },
        {
          name: 'model',
          parameterType: 'categorical',
          feasibleSpace: { list: ['rf', 'gbt'] }
        }
      ]
    });
  });

  it('names every wrong field', () => {
    const form = base();
    form.parameters[0].min = '200';
    form.parameters[1].searched = true;
    form.parameters[1].min = '0';
    form.parameters[2].searched = true;
    form.parameters[2].kind = 'discrete';
    form.parameters[2].list = 'a, 2';
    Object.assign(form, {
      objective: ' ',
      maxTrials: '0',
      parallel: '1.5',
      algorithm: 'pbt'
    });
    const result = buildSweepRequest(form, 'nb.ipynb');
    expect(result.request).toBeNull();
    expect(result.errors).toEqual([
      'n: min 200 is above max 100.',
      'lr: a log scale needs min above 0.',
      'model: discrete values must be numbers, not a.',
      'Name the objective: the metric the trials report.',
      'Max trials: "0" must be a whole number of at least 1.',
      'Parallel trials: "1.5" must be a whole number of at least 1.',
      expect.stringContaining('Algorithm: "pbt"; use one of random, grid')
    ]);
  });

  it('needs a parameter to search and numbers in ranges', () => {
    const form = base();
    form.parameters[0].searched = false;
    expect(buildSweepRequest(form, 'nb.ipynb').errors).toEqual([
      'Choose at least one parameter to search.'
    ]);
    form.parameters[0].searched = true;
    form.parameters[0].max = 'ten';
    form.parameters[0].min = '1.5';
    expect(buildSweepRequest(form, 'nb.ipynb').errors).toEqual([
      'n max: "ten" is not a number.'
    ]);
  });
});

describe('bestTrialNumber', () => {
  it('is the best succeeded trial while the sweep runs', () => {
    expect(bestTrialNumber(sweepOf())).toBe(1);
    const minimizing = sweepOf();
    minimizing.spec = { ...minimizing.spec, goal: 'minimize' };
    expect(bestTrialNumber(minimizing)).toBe(0);
  });

  it("is the server's once it is known", () => {
    expect(
      bestTrialNumber(
        sweepOf({ best: { number: 0, objective: 0.8, params: {} } })
      )
    ).toBe(0);
  });

  it('is null before any trial succeeded', () => {
    expect(bestTrialNumber(sweepOf({ trials: [] }))).toBeNull();
  });
});

describe('trialParamTexts', () => {
  it('types values as the run form does', () => {
    expect(
      trialParamTexts({
        number: 0,
        state: 'SUCCEEDED',
        params: { n: 20, lr: 0.01, model: 'rf', on: true }
      })
    ).toEqual({ n: '20', lr: '0.01', model: 'rf', on: 'true' });
  });
});

describe('the plots', () => {
  it('draw the objective of every scored trial with the best so far', () => {
    const spec = objectivePlotSpec(sweepOf())!;
    expect(spec.$schema).toContain('vega-lite/v5');
    const values = (spec.data as { values: { [k: string]: JSONValue }[] })
      .values;
    expect(values).toEqual([
      {
        trial: 0,
        objective: 0.8,
        state: 'SUCCEEDED',
        best: false,
        bestSoFar: 0.8
      },
      {
        trial: 1,
        objective: 0.9,
        state: 'SUCCEEDED',
        best: true,
        bestSoFar: 0.9
      }
    ]);
    expect((spec.layer as JSONValue[]).length).toBe(3);
  });

  it('draw each parameter against the objective, on its scale', () => {
    const spec = parameterPlotSpec(sweepOf())!;
    const charts = spec.hconcat as { [k: string]: JSONValue }[];
    expect(charts.map(c => c.title)).toEqual(['lr', 'model']);
    const x = (chart: { [k: string]: JSONValue }) =>
      (chart.encoding as { [k: string]: { [k: string]: JSONValue } }).x;
    expect(x(charts[0])).toMatchObject({
      type: 'quantitative',
      scale: { type: 'log' }
    });
    expect(x(charts[1])).toMatchObject({ type: 'nominal' });
    expect((charts[1].data as { values: JSONValue[] }).values).toEqual([
      { trial: 0, value: 'rf', objective: 0.8, best: false },
      { trial: 1, value: 'gbt', objective: 0.9, best: true }
    ]);
  });

  it('are absent until a trial reports', () => {
    expect(objectivePlotSpec(sweepOf({ trials: [] }))).toBeNull();
    expect(parameterPlotSpec(sweepOf({ trials: [] }))).toBeNull();
  });
});
