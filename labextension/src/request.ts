/**
 * The one typed request helper for the server extension's REST API, and the
 * API client built on it (one method per route of openapi.yaml).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  ICompileResult,
  IDeployment,
  IDeployRequest,
  IGraph,
  ILogs,
  IMlkApi,
  ILaunchRequest,
  IRun,
  IServer,
  IServerProfile,
  ISweep,
  ISweepRequest,
  ISweepStarted,
  JSONValue
} from './tokens';

/** The REST API's root under the server's base URL. */
export const API_ROOT = 'mlk/api';

/**
 * A request the server refused or could not serve. `message` is the server's
 * own (it says what to do next); `isServerMissing` tells that the server
 * extension itself is not there.
 */
export class MlkRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string | null = null,
    readonly isServerMissing = false
  ) {
    super(message);
    this.name = 'MlkRequestError';
  }
}

/** The message shown when no server extension answers under /mlk/api. */
export const SERVER_MISSING_MESSAGE =
  'The jupyter_mlk server extension is not running. Install it with ' +
  '`pip install jupyter-mlk`, check that `jupyter server extension list` ' +
  'shows jupyter_mlk enabled (`jupyter server extension enable jupyter_mlk`), ' +
  'then restart JupyterLab.';

/**
 * Calls one route of the REST API and returns its JSON body.
 *
 * @param endpoint - the route under /mlk/api, e.g. `runs/abc/cancel`
 * @param init - fetch options; a JSON body is sent as is
 * @param settings - the server connection (the app's by default)
 * @throws MlkRequestError with the server's message for any non-2xx answer
 */
export async function requestAPI<T>(
  endpoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_ROOT, endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new MlkRequestError(
      `Cannot reach the Jupyter server: ${String(error)}`,
      0
    );
  }
  const text = await response.text();
  const body = parseJSON(text);
  if (!response.ok) {
    throw errorFrom(response.status, body);
  }
  return body as T;
}

function parseJSON(text: string): JSONValue | undefined {
  if (!text) {
    return undefined;
  }
  try {
    return JSON.parse(text) as JSONValue;
  } catch {
    return undefined;
  }
}

function errorFrom(status: number, body: JSONValue | undefined) {
  const isObject =
    typeof body === 'object' && body !== null && !Array.isArray(body);
  const message = isObject ? body['message'] : undefined;
  if (typeof message === 'string' && message) {
    const reason = isObject ? body['reason'] : null;
    return new MlkRequestError(
      message,
      status,
      typeof reason === 'string' ? reason : null
    );
  }
  // A route that does not exist answers 404 with jupyter-server's HTML page,
  // never with the JSON error body every handler of ours writes.
  if (status === 404) {
    return new MlkRequestError(SERVER_MISSING_MESSAGE, 404, null, true);
  }
  return new MlkRequestError(`The server answered HTTP ${status}.`, status);
}

function quote(segment: string): string {
  return encodeURIComponent(segment);
}

function post(body: { [key: string]: JSONValue | undefined }): RequestInit {
  return { method: 'POST', body: JSON.stringify(body) };
}

/** The REST API of the server extension. */
export class MlkApi implements IMlkApi {
  constructor(
    private readonly _settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  getGraph(path: string, content?: JSONValue): Promise<IGraph> {
    return this._request<IGraph>('graph', post({ path, content }));
  }

  async listRuns(options: { path?: string; limit?: number } = {}) {
    const query = URLExt.objectToQueryString({
      ...(options.path ? { path: options.path } : {}),
      ...(options.limit ? { limit: String(options.limit) } : {})
    });
    const body = await this._request<{ runs: IRun[] }>(`runs${query}`);
    return body.runs;
  }

  startRun(
    path: string,
    params: { [name: string]: string },
    options: { noCache?: boolean } = {}
  ): Promise<IRun> {
    return this._request<IRun>(
      'runs',
      post({ path, params, no_cache: options.noCache ?? false })
    );
  }

  getRun(runId: string): Promise<IRun> {
    return this._request<IRun>(`runs/${quote(runId)}`);
  }

  cancelRun(runId: string): Promise<IRun> {
    return this._request<IRun>(`runs/${quote(runId)}/cancel`, post({}));
  }

  getLogs(runId: string, step: string): Promise<ILogs> {
    return this._request<ILogs>(
      `runs/${quote(runId)}/steps/${quote(step)}/logs`
    );
  }

  getStepNotebook(runId: string, step: string): Promise<JSONValue> {
    return this._request<JSONValue>(
      `runs/${quote(runId)}/steps/${quote(step)}/notebook`
    );
  }

  compile(
    path: string,
    options: { save?: boolean; image?: string } = {}
  ): Promise<ICompileResult> {
    return this._request<ICompileResult>(
      'compile',
      post({
        path,
        save: options.save ?? true,
        image: options.image || undefined
      })
    );
  }

  async listSweeps(): Promise<ISweep[]> {
    const body = await this._request<{ sweeps: ISweep[] }>('sweeps');
    return body.sweeps;
  }

  startSweep(request: ISweepRequest): Promise<ISweepStarted> {
    return this._request<ISweepStarted>('sweeps', {
      method: 'POST',
      body: JSON.stringify(request)
    });
  }

  getSweep(sweepId: string): Promise<ISweep> {
    return this._request<ISweep>(`sweeps/${quote(sweepId)}`);
  }

  cancelSweep(sweepId: string): Promise<ISweep> {
    return this._request<ISweep>(`sweeps/${quote(sweepId)}/cancel`, post({}));
  }

  listServers(): Promise<{ servers: IServer[]; profiles: IServerProfile[] }> {
    return this._request('servers');
  }

  launchServer(
    request: ILaunchRequest
  ): Promise<{ name: string; state: string }> {
    return this._request('servers', {
      method: 'POST',
      body: JSON.stringify(request)
    });
  }

  stopServer(name: string): Promise<IServer> {
    return this._request<IServer>(`servers/${quote(name)}/stop`, post({}));
  }

  async listDeployments(): Promise<IDeployment[]> {
    const body = await this._request<{ deployments: IDeployment[] }>(
      'deployments'
    );
    return body.deployments;
  }

  deploy(request: IDeployRequest): Promise<IDeployment> {
    return this._request<IDeployment>('deployments', {
      method: 'POST',
      body: JSON.stringify(request)
    });
  }

  undeploy(name: string): Promise<{ name: string; removed: boolean }> {
    return this._request(`deployments/${quote(name)}`, { method: 'DELETE' });
  }

  promoteDeployment(name: string): Promise<IDeployment> {
    return this._request(`deployments/${quote(name)}/promote`, post({}));
  }

  rollbackDeployment(name: string): Promise<IDeployment> {
    return this._request(`deployments/${quote(name)}/rollback`, post({}));
  }

  setDeploymentTraffic(name: string, percent: number): Promise<IDeployment> {
    return this._request(
      `deployments/${quote(name)}/traffic`,
      post({ percent })
    );
  }

  predict(name: string, data: JSONValue): Promise<JSONValue> {
    return this._request(`deployments/${quote(name)}/predict`, post({ data }));
  }

  private _request<T>(endpoint: string, init: RequestInit = {}): Promise<T> {
    return requestAPI<T>(endpoint, init, this._settings);
  }
}
