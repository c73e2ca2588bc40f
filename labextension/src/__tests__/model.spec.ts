import { MlkModel } from '../model';
import { MlkRequestError, SERVER_MISSING_MESSAGE } from '../request';
import {
  ICellInfo,
  IGraph,
  IMlkApi,
  INotebookSource,
  IRun,
  JSONValue
} from '../tokens';

function graphOf(...names: string[]): IGraph {
  return {
    schema_version: 1,
    notebook: 'nb.ipynb',
    steps: names.map((name, i) => ({
      name,
      kfp_name: name,
      cells: [i + 1],
      cell_ids: [`c${i + 1}`],
      params: [],
      inputs: {},
      outputs: [],
      after: [],
      prev_tags: [],
      condition: null,
      resources: { limits: {}, gpus: 0, image: null, cache: true },
      metrics: []
    })),
    edges: [],
    parameters: [],
    metrics: {},
    errors: [],
    warnings: []
  };
}

function runOf(id: string, state: IRun['state'], withSteps = true): IRun {
  return {
    id,
    notebook: 'nb.ipynb',
    state,
    backend: 'local',
    created: 1,
    params: {},
    metrics: {},
    ...(withSteps ? { steps: [{ name: 'a', state: 'PENDING' }] } : {})
  };
}

class FakeApi implements IMlkApi {
  graph = graphOf('load', 'train');
  graphError: Error | null = null;
  runs: IRun[] = [];
  run = runOf('r1', 'RUNNING');
  calls: string[] = [];
  contents: (JSONValue | undefined)[] = [];

  async getGraph(path: string, content?: JSONValue) {
    this.calls.push(`graph ${path}`);
    this.contents.push(content);
    if (this.graphError) {
      throw this.graphError;
    }
    return this.graph;
  }
  async listRuns() {
    this.calls.push('runs');
    return this.runs;
  }
  async startRun(path: string, params: { [name: string]: string }) {
    this.calls.push(`start ${path} ${JSON.stringify(params)}`);
    return runOf('r1', 'PENDING', false);
  }
  async getRun(runId: string) {
    this.calls.push(`run ${runId}`);
    return { ...this.run, id: runId };
  }
  async cancelRun(runId: string) {
    this.calls.push(`cancel ${runId}`);
    return { ...this.run, id: runId, state: 'CANCELLED' as const };
  }
  async getLogs() {
    return { stdout: '', stderr: '' };
  }
  async getStepNotebook() {
    return {};
  }
  async compile() {
    return { yaml: '' };
  }
  async listSweeps() {
    return [];
  }
  async startSweep(): Promise<never> {
    throw new Error('not used');
  }
  async getSweep(): Promise<never> {
    throw new Error('not used');
  }
  async cancelSweep(): Promise<never> {
    throw new Error('not used');
  }
  async listServers() {
    return { servers: [], profiles: [] };
  }
  async launchServer(): Promise<never> {
    throw new Error('not used');
  }
  async stopServer(): Promise<never> {
    throw new Error('not used');
  }
  async listDeployments() {
    return [];
  }
  async deploy(): Promise<never> {
    throw new Error('not used');
  }
  async undeploy(): Promise<never> {
    throw new Error('not used');
  }
  async promoteDeployment(): Promise<never> {
    throw new Error('not used');
  }
  async rollbackDeployment(): Promise<never> {
    throw new Error('not used');
  }
  async setDeploymentTraffic(): Promise<never> {
    throw new Error('not used');
  }
  async predict(): Promise<never> {
    throw new Error('not used');
  }
}

class FakeNotebook implements INotebookSource {
  path = 'nb.ipynb';
  isDirty = false;
  saved = 0;
  highlighted: number[] = [];
  revealed: number[] = [];
  cell: ICellInfo = { index: 1, id: 'c1', cellType: 'code', tags: [] };

  content(): JSONValue {
    return { cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5 };
  }
  async save() {
    this.saved++;
    this.isDirty = false;
  }
  activeCell() {
    return this.cell;
  }
  setCellTags(index: number, tags: string[]) {
    this.cell = { ...this.cell, index, tags };
  }
  highlightCells(indices: number[]) {
    this.highlighted = indices;
  }
  revealCell(index: number) {
    this.revealed.push(index);
  }
}

const flush = () => new Promise(resolve => setTimeout(resolve, 0));

/** Lets pending promise chains settle while timers are faked. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await Promise.resolve();
  }
}

describe('MlkModel', () => {
  let api: FakeApi;
  let model: MlkModel;
  let notebook: FakeNotebook;

  beforeEach(() => {
    api = new FakeApi();
    model = new MlkModel(api, { pollInterval: 0, refreshDelay: 0 });
    notebook = new FakeNotebook();
  });

  afterEach(() => model.dispose());

  it('fetches the graph of the unsaved content when it follows a notebook', async () => {
    const seen: (IGraph | null)[] = [];
    model.graphChanged.connect((_, graph) => seen.push(graph));
    model.setNotebook(notebook);
    await flush();
    expect(api.calls).toEqual(['graph nb.ipynb']);
    expect(api.contents[0]).toEqual(notebook.content());
    expect(model.graph?.steps.map(s => s.name)).toEqual(['load', 'train']);
    expect(seen[seen.length - 1]).toBe(api.graph);
  });

  it('keeps the server message when the graph cannot be built', async () => {
    api.graphError = new MlkRequestError('notebook.ipynb is not JSON', 400);
    model.setNotebook(notebook);
    await flush();
    expect(model.graph).toBeNull();
    expect(model.graphError).toBe('notebook.ipynb is not JSON');
    expect(model.serverMissing).toBe(false);
  });

  it('tells when the server extension is missing', async () => {
    api.graphError = new MlkRequestError(
      SERVER_MISSING_MESSAGE,
      404,
      null,
      true
    );
    const states: boolean[] = [];
    model.serverStatusChanged.connect((_, missing) => states.push(missing));
    model.setNotebook(notebook);
    await flush();
    expect(model.serverMissing).toBe(true);
    expect(states).toEqual([true]);
  });

  it('highlights the cells of the selected step and clears them on switch', async () => {
    model.setNotebook(notebook);
    await flush();
    model.selectStep('train');
    expect(notebook.highlighted).toEqual([2]);
    const other = new FakeNotebook();
    model.setNotebook(other);
    expect(notebook.highlighted).toEqual([]);
    expect(model.selectedStep).toBeNull();
  });

  it('drops the selection when the step disappears', async () => {
    model.setNotebook(notebook);
    await flush();
    model.selectStep('train');
    api.graph = graphOf('load');
    await model.refreshGraph();
    expect(model.selectedStep).toBeNull();
    expect(notebook.highlighted).toEqual([]);
  });

  it('writes tags to the active cell and fetches the graph again', async () => {
    jest.useFakeTimers();
    try {
      model.setNotebook(notebook);
      const cells: (ICellInfo | null)[] = [];
      model.activeCellChanged.connect((_, cell) => cells.push(cell));
      model.setCellTags(['step:prep']);
      expect(notebook.cell.tags).toEqual(['step:prep']);
      expect(cells[0]?.tags).toEqual(['step:prep']);
      jest.runOnlyPendingTimers();
      expect(api.calls.filter(c => c.startsWith('graph'))).toHaveLength(2);
    } finally {
      jest.useRealTimers();
    }
  });

  it('saves a dirty notebook before it starts a run', async () => {
    model.setNotebook(notebook);
    notebook.isDirty = true;
    const run = await model.startRun({ n_estimators: '10' });
    expect(notebook.saved).toBe(1);
    expect(run.id).toBe('r1');
    expect(api.calls).toContain('start nb.ipynb {"n_estimators":"10"}');
    await flush();
    expect(api.calls).toContain('run r1');
    expect(model.getRun('r1')?.steps).toBeDefined();
  });

  it('fetches a watched run on its events, at most twice for a burst', async () => {
    model.watchRun('r1');
    await flush();
    api.calls = [];
    for (const step of ['a', 'a', 'b', 'b']) {
      model.handleRunEvent({
        run_id: 'r1',
        notebook: 'nb.ipynb',
        step,
        state: 'RUNNING'
      });
    }
    await flush();
    await flush();
    expect(api.calls.filter(c => c === 'run r1')).toHaveLength(2);
  });

  it('ignores events of runs it does not watch, but lists new ones', async () => {
    jest.useFakeTimers();
    try {
      model.handleRunEvent({
        run_id: 'cli-run',
        notebook: 'nb.ipynb',
        step: '',
        state: 'RUNNING'
      });
      expect(api.calls).toEqual([]);
      jest.advanceTimersByTime(500);
      expect(api.calls).toEqual(['runs']);
    } finally {
      jest.useRealTimers();
    }
  });

  it('updates the listed state of a run from its own event', async () => {
    api.runs = [runOf('r2', 'RUNNING', false)];
    await model.refreshRuns();
    model.handleRunEvent({
      run_id: 'r2',
      notebook: 'nb.ipynb',
      step: '',
      state: 'SUCCEEDED'
    });
    expect(model.runs[0].state).toBe('SUCCEEDED');
  });

  it('polls an active watched run slowly when no event comes', async () => {
    jest.useFakeTimers();
    try {
      const polling = new MlkModel(api, { pollInterval: 5 });
      polling.watchRun('r1');
      await settle();
      api.calls = [];
      jest.advanceTimersByTime(4000);
      expect(api.calls).toEqual([]);
      jest.advanceTimersByTime(1000);
      expect(api.calls).toEqual(['run r1']);
      polling.dispose();
    } finally {
      jest.useRealTimers();
    }
  });

  it('stops polling once the run has ended', async () => {
    jest.useFakeTimers();
    try {
      api.run = runOf('r1', 'SUCCEEDED');
      const polling = new MlkModel(api, { pollInterval: 5 });
      polling.watchRun('r1');
      await settle();
      api.calls = [];
      jest.advanceTimersByTime(20000);
      expect(api.calls).toEqual([]);
      polling.dispose();
    } finally {
      jest.useRealTimers();
    }
  });

  it('cancels through the API and stores the answer', async () => {
    model.watchRun('r1');
    await flush();
    await model.cancelRun('r1');
    expect(model.getRun('r1')?.state).toBe('CANCELLED');
  });
});
