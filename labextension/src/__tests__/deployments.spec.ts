import {
  buildDeployRequest,
  canaryPercent,
  deployableOutputs,
  DeploymentsModel,
  describeLineage,
  modelRef,
  parseTryIt,
  SAMPLE_ROWS,
  suggestName,
  trafficToCommit,
  versionOf
} from '../deployments';
import { IDeployment, IMlkApi, IRun, IRunStep } from '../tokens';

function deploymentOf(canary: number | null = null): IDeployment {
  const version = (n: number) => ({
    version: n,
    model_ref: `r-${n}:train/model`,
    format: 'sklearn',
    lineage: { run_id: `r-${n}`, step: 'train', variable: 'model' },
    status: 'RUNNING',
    error: null
  });
  return {
    name: 'iris',
    backend: 'local',
    status: 'RUNNING',
    url: 'http://127.0.0.1:9000/v1/models/iris',
    traffic:
      canary === null
        ? [{ version: 1, role: 'stable', percent: 100 }]
        : [
            { version: 1, role: 'stable', percent: 100 - canary },
            { version: 2, role: 'canary', percent: canary }
          ],
    versions: canary === null ? [version(1)] : [version(1), version(2)]
  };
}

function stepOf(state: IRunStep['state'], outputs = {}): IRunStep {
  return { name: 'train', state, outputs };
}

describe('deployableOutputs', () => {
  const run: IRun = {
    id: 'r-1',
    notebook: 'iris.ipynb',
    state: 'SUCCEEDED',
    backend: 'local',
    created: 0,
    params: {},
    metrics: {}
  };

  it('lists the values a finished step wrote, sorted', () => {
    const step = stepOf('SUCCEEDED', { scaler: 'd1', model: 'd2' });
    expect(deployableOutputs(run, step)).toEqual(['model', 'scaler']);
  });

  it('adds the output names of the run graph', () => {
    const withGraph: IRun = {
      ...run,
      graph: {
        steps: [{ name: 'train', outputs: ['model', 'report'] }],
        edges: []
      } as unknown as IRun['graph']
    };
    const step = stepOf('CACHED', { model: 'd2' });
    expect(deployableOutputs(withGraph, step)).toEqual(['model', 'report']);
  });

  it('offers nothing for a step that did not finish well', () => {
    for (const state of ['RUNNING', 'FAILED', 'SKIPPED'] as const) {
      expect(deployableOutputs(run, stepOf(state, { model: 'd' }))).toEqual([]);
    }
  });
});

describe('buildDeployRequest', () => {
  const ref = modelRef('r-1', 'train', 'model');

  it('names the step and the variable in the model reference', () => {
    expect(ref).toBe('r-1:train/model');
    expect(
      buildDeployRequest(ref, { name: ' iris ', canaryPercent: '' })
    ).toEqual({ request: { model: ref, name: 'iris' }, errors: [] });
  });

  it('sends a canary share as a whole number', () => {
    const { request } = buildDeployRequest(ref, {
      name: 'iris',
      canaryPercent: '20'
    });
    expect(request).toEqual({ model: ref, name: 'iris', canary_percent: 20 });
  });

  it('refuses an empty name and a share outside 1..99', () => {
    for (const canaryPercent of ['0', '100', '12.5', 'ten']) {
      const result = buildDeployRequest(ref, { name: '', canaryPercent });
      expect(result.request).toBeNull();
      expect(result.errors).toHaveLength(2);
    }
  });
});

describe('suggestName', () => {
  it('makes a valid deployment name', () => {
    expect(suggestName('Iris.ipynb')).toBe('iris');
    expect(suggestName('01 My_Pipeline!.ipynb')).toBe('my-pipeline');
    expect(suggestName('123')).toBe('model');
    expect(suggestName('a'.repeat(60))).toHaveLength(45);
  });
});

describe('traffic', () => {
  it('reads the canary share and versions from the split', () => {
    expect(canaryPercent(deploymentOf())).toBeNull();
    expect(canaryPercent(deploymentOf(30))).toBe(30);
    expect(versionOf(deploymentOf(30), 'canary')?.version).toBe(2);
    expect(versionOf(deploymentOf(), 'canary')).toBeNull();
  });

  it('commits a dragged value only when it changed, clamped', () => {
    expect(trafficToCommit(30, null)).toBeNull();
    expect(trafficToCommit(30, 30)).toBeNull();
    expect(trafficToCommit(30, 45)).toBe(45);
    expect(trafficToCommit(30, 44.6)).toBe(45);
    expect(trafficToCommit(30, 130)).toBe(100);
    expect(trafficToCommit(30, -5)).toBe(0);
    expect(trafficToCommit(30, NaN)).toBeNull();
  });

  it('describes where a version came from', () => {
    const [v1] = deploymentOf().versions;
    expect(describeLineage(v1)).toBe('run r-1 · train/model');
    expect(
      describeLineage({ ...v1, lineage: { path: 'model/iris.joblib' } })
    ).toBe('model/iris.joblib');
  });
});

describe('parseTryIt', () => {
  it('sends the sample rows as they are', () => {
    expect(parseTryIt(SAMPLE_ROWS)).toEqual({
      data: [[5.1, 3.5, 1.4, 0.2]],
      error: null
    });
  });

  it('passes V1 and V2 bodies through', () => {
    const v1 = { instances: [[1, 2, 3, 4]] };
    expect(parseTryIt(JSON.stringify(v1)).data).toEqual(v1);
    const v2 = {
      inputs: [
        { name: 'x', shape: [1, 4], datatype: 'FP64', data: [1, 2, 3, 4] }
      ]
    };
    expect(parseTryIt(JSON.stringify(v2)).data).toEqual(v2);
  });

  it('says what to send for text it cannot use', () => {
    expect(parseTryIt('').error).toContain(SAMPLE_ROWS);
    expect(parseTryIt('[[1, 2').error).toMatch(/^Not JSON/);
    expect(parseTryIt('{"rows": []}').error).toContain('"instances"');
    expect(parseTryIt('42').error).toContain('list of rows');
  });
});

describe('DeploymentsModel', () => {
  function fakeApi() {
    const calls: string[] = [];
    let list = [deploymentOf(20)];
    const api = {
      async listDeployments() {
        calls.push('list');
        return list;
      },
      async deploy(request: { name: string }) {
        calls.push(`deploy ${request.name}`);
        return { ...deploymentOf(), name: request.name };
      },
      async undeploy(name: string) {
        calls.push(`undeploy ${name}`);
        list = [];
        return { name, removed: true };
      },
      async setDeploymentTraffic(name: string, percent: number) {
        calls.push(`traffic ${name} ${percent}`);
        return deploymentOf(percent);
      },
      async promoteDeployment(name: string) {
        calls.push(`promote ${name}`);
        return deploymentOf();
      }
    };
    return { api: api as unknown as IMlkApi, calls };
  }

  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('polls only while visible', async () => {
    const { api, calls } = fakeApi();
    const model = new DeploymentsModel(api, { pollInterval: 5 });
    model.setVisible(true);
    await Promise.resolve();
    expect(calls).toEqual(['list']);
    jest.advanceTimersByTime(10_000);
    expect(calls).toEqual(['list', 'list', 'list']);
    model.setVisible(false);
    jest.advanceTimersByTime(20_000);
    expect(calls).toHaveLength(3);
    model.dispose();
  });

  it('keeps the list in step with the answers', async () => {
    const { api, calls } = fakeApi();
    const model = new DeploymentsModel(api);
    let changes = 0;
    model.changed.connect(() => changes++);
    await model.refresh();
    expect(model.loaded).toBe(true);
    await model.setTraffic('iris', 55);
    expect(canaryPercent(model.deployments[0])).toBe(55);
    await model.promote('iris');
    expect(canaryPercent(model.deployments[0])).toBeNull();
    await model.deploy({ model: 'r-2:train/model', name: 'alpha' });
    expect(model.deployments.map(d => d.name)).toEqual(['alpha', 'iris']);
    await model.undeploy('iris');
    expect(model.deployments.map(d => d.name)).toEqual(['alpha']);
    expect(calls).toEqual([
      'list',
      'traffic iris 55',
      'promote iris',
      'deploy alpha',
      'undeploy iris'
    ]);
    expect(changes).toBe(5);
    model.dispose();
  });
});
