import {
  buildLaunchRequest,
  EMPTY_LAUNCH_FORM,
  ServersModel
} from '../servers';
import { SweepsModel } from '../sweeps';
import { IMlkApi, IServer, ISweep } from '../tokens';

function sweepOf(id: string, state: ISweep['state'], trials = true): ISweep {
  return {
    id,
    notebook: 'nb.ipynb',
    state,
    spec: {
      objective: 'accuracy',
      goal: 'maximize',
      algorithm: 'random',
      parallel: 1,
      max_trials: 3,
      max_failed: 1,
      parameters: []
    },
    ...(trials ? { trials: [] } : {})
  };
}

function serverOf(name: string, state: string, stage: string): IServer {
  return { id: `u-${name}`, name, backend: 'local', state, stage, url: '' };
}

/** Only the sweep and server routes; the rest is never called here. */
function fakeApi() {
  const calls: string[] = [];
  const state = {
    sweeps: [sweepOf('s1', 'RUNNING', false)],
    sweep: sweepOf('s1', 'RUNNING'),
    servers: [] as IServer[],
    launchError: null as Error | null
  };
  const api = {
    async listSweeps() {
      calls.push('sweeps');
      return state.sweeps;
    },
    async getSweep(id: string) {
      calls.push(`sweep ${id}`);
      return { ...state.sweep, id };
    },
    async startSweep() {
      calls.push('start');
      return { id: 's2', state: 'PENDING' };
    },
    async cancelSweep(id: string) {
      calls.push(`cancel ${id}`);
      return { ...sweepOf(id, 'CANCELLED', false) };
    },
    async listServers() {
      calls.push('servers');
      return { servers: state.servers, profiles: [{ name: 'cpu' }] };
    },
    async launchServer(request: { name: string }) {
      calls.push(`launch ${JSON.stringify(request)}`);
      if (state.launchError) {
        throw state.launchError;
      }
      state.servers = [serverOf(request.name, 'starting', 'requested')];
      return { name: request.name, state: 'starting' };
    },
    async stopServer(name: string) {
      calls.push(`stop ${name}`);
      return serverOf(name, 'stopped', 'stopped');
    }
  };
  return { api: api as unknown as IMlkApi, calls, state };
}

const flush = () => new Promise(resolve => setTimeout(resolve, 0));

describe('SweepsModel', () => {
  it('fetches a watched sweep on its events and updates the list', async () => {
    const { api, calls, state } = fakeApi();
    const model = new SweepsModel(api, { pollInterval: 0 });
    await model.refreshSweeps();
    model.watchSweep('s1');
    await flush();
    expect(calls).toEqual(['sweeps', 'sweep s1']);

    state.sweep = {
      ...sweepOf('s1', 'RUNNING'),
      trials: [
        { number: 0, params: { n: 1 }, state: 'SUCCEEDED', objective: 0.5 }
      ]
    };
    model.handleSweepEvent({
      sweep_id: 's1',
      trial: 0,
      state: 'SUCCEEDED',
      objective: 0.5
    });
    await flush();
    expect(model.getSweep('s1')!.trials).toHaveLength(1);
    expect(calls).toEqual(['sweeps', 'sweep s1', 'sweep s1']);

    model.handleSweepEvent({ sweep_id: 's1', trial: -1, state: 'SUCCEEDED' });
    expect(model.sweeps[0].state).toBe('SUCCEEDED');
    expect(model.sweeps[0].trials).toBeUndefined();
    model.dispose();
  });

  it('ignores events of sweeps whose view is closed, but lists new sweeps', async () => {
    jest.useFakeTimers();
    const { api, calls } = fakeApi();
    const model = new SweepsModel(api, { pollInterval: 0 });
    model.handleSweepEvent({ sweep_id: 's9', trial: 0, state: 'RUNNING' });
    expect(calls).toEqual([]);
    jest.advanceTimersByTime(400);
    expect(calls).toEqual(['sweeps']);
    model.dispose();
    jest.useRealTimers();
  });

  it('keeps the known trials when cancel answers without them', async () => {
    const { api, state } = fakeApi();
    state.sweep = {
      ...sweepOf('s1', 'RUNNING'),
      trials: [{ number: 0, params: {}, state: 'RUNNING' }]
    };
    const model = new SweepsModel(api, { pollInterval: 0 });
    await model.fetchSweep('s1');
    state.sweep = { ...state.sweep, state: 'CANCELLED' };
    await model.cancelSweep('s1');
    expect(model.getSweep('s1')!.state).toBe('CANCELLED');
    expect(model.getSweep('s1')!.trials).toHaveLength(1);
    model.dispose();
  });
});

describe('ServersModel', () => {
  it('keeps each launch stage and shows a failure as the server wrote it', async () => {
    const { api, calls } = fakeApi();
    const model = new ServersModel(api, { pollInterval: 0 });
    await model.launch({ name: 'gpu', gpus: 1 });
    expect(calls).toEqual(['launch {"name":"gpu","gpus":1}', 'servers']);
    const message =
      'not enough free GPUs: 1 asked, 0 free; launch with --gpus 0';
    model.handleLaunchEvent({
      name: 'gpu',
      stage: 'requested',
      message: 'accepted'
    });
    model.handleLaunchEvent({ name: 'gpu', stage: 'failed', message });
    expect(model.progress('gpu').map(e => e.stage)).toEqual([
      'requested',
      'failed'
    ]);
    expect(model.servers[0]).toMatchObject({
      state: 'failed',
      stage: 'failed',
      error: message
    });
    model.dispose();
  });

  it('replaces a stopped server in the list', async () => {
    const { api, state } = fakeApi();
    state.servers = [serverOf('a', 'ready', 'ready')];
    const model = new ServersModel(api, { pollInterval: 0 });
    await model.refresh();
    expect(model.profiles).toEqual([{ name: 'cpu' }]);
    await model.stop('a');
    expect(model.servers[0].state).toBe('stopped');
    model.dispose();
  });
});

describe('buildLaunchRequest', () => {
  it('leaves empty fields to the profile', () => {
    expect(
      buildLaunchRequest({
        ...EMPTY_LAUNCH_FORM,
        name: ' dev ',
        profile: 'cpu'
      })
    ).toEqual({
      request: { name: 'dev', profile: 'cpu' },
      errors: []
    });
  });

  it('sends what was typed', () => {
    const form = {
      name: 'big',
      profile: '',
      backend: 'local' as const,
      gpus: '2',
      memory: '16Gi',
      cpu: '4',
      idleTimeout: '30m'
    };
    expect(buildLaunchRequest(form).request).toEqual({
      name: 'big',
      backend: 'local',
      gpus: 2,
      memory: '16Gi',
      cpu: '4',
      idle_timeout: '30m'
    });
  });

  it('needs a name and a whole number of GPUs', () => {
    expect(
      buildLaunchRequest({ ...EMPTY_LAUNCH_FORM, gpus: '1.5' }).errors
    ).toEqual([
      'Give the server a name.',
      'GPUs: "1.5" must be a whole number, 0 or more.'
    ]);
  });
});
