/**
 * The token of the panel's model and the shapes of the REST API it speaks
 * (jupyter_mlk/server/openapi.yaml is the contract; README has the graph form).
 */
import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

/** Command ids, `mlk:<verb>-<noun>`. */
export namespace CommandIDs {
  export const runPipeline = 'mlk:run-pipeline';
  export const compilePipeline = 'mlk:compile-pipeline';
  export const refreshGraph = 'mlk:refresh-graph';
  export const openPanel = 'mlk:open-panel';
  export const openRun = 'mlk:open-run';
  export const cancelRun = 'mlk:cancel-run';
  export const newSweep = 'mlk:new-sweep';
  export const openSweep = 'mlk:open-sweep';
  export const cancelSweep = 'mlk:cancel-sweep';
  export const refreshServers = 'mlk:refresh-servers';
  export const deployModel = 'mlk:deploy-model';
  export const refreshDeployments = 'mlk:refresh-deployments';
}

/** The id of the settings schema (schema/plugin.json). */
export const SETTINGS_ID = 'jupyter-mlk:plugin';

/** The jupyter-server event the server extension emits on every state change. */
export const RUN_STATE_EVENT = 'https://jupyter-mlk.org/events/run-state';

/** The event of every sweep and trial state change. */
export const SWEEP_STATE_EVENT = 'https://jupyter-mlk.org/events/sweep-state';

/** The event of every stage of a notebook server launch. */
export const LAUNCH_EVENT = 'https://jupyter-mlk.org/events/launch';

export type RunState =
  | 'PENDING'
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'CANCELLED'
  | 'CACHED'
  | 'SKIPPED';

/** States after which nothing changes any more. */
export const FINAL_STATES: ReadonlySet<string> = new Set([
  'SUCCEEDED',
  'FAILED',
  'CANCELLED',
  'CACHED',
  'SKIPPED'
]);

/** JSON as it comes over the wire. */
export type JSONValue =
  string | number | boolean | null | JSONValue[] | { [key: string]: JSONValue };

export interface IResources {
  limits: { [resource: string]: string };
  gpus: number;
  image: string | null;
  cache: boolean;
  node_selector?: { [label: string]: string };
  tolerations?: string[];
}

/** One step of the graph (`jupyter mlk graph --json`). */
export interface IGraphStep {
  name: string;
  kfp_name: string;
  cells: number[];
  cell_ids: (string | null)[];
  params: string[];
  inputs: { [value: string]: string };
  alias_inputs?: { [value: string]: string };
  outputs: string[];
  after: string[];
  prev_tags: string[];
  condition: ICondition | null;
  resources: IResources;
  functions_used?: string[];
  metrics: string[];
  metric_cells?: number[];
}

export interface IGraphParameter {
  name: string;
  type: string;
  default: JSONValue;
  source: string;
  annotation: string | null;
  choices: JSONValue[] | null;
  cell_index: number | null;
}

export interface IProblem {
  severity: 'error' | 'warning';
  message: string;
  cell_index: number | null;
  cell_id?: string | null;
  step?: string | null;
  line?: number | null;
}

export interface IGraph {
  schema_version: number;
  notebook: string;
  kernel?: string;
  steps: IGraphStep[];
  edges: [string, string][];
  parameters: IGraphParameter[];
  metrics: { [metric: string]: string };
  imports_cells?: number[];
  parameters_cells?: number[];
  functions_cells?: number[];
  errors: IProblem[];
  warnings: IProblem[];
}

export interface IRunStep {
  name: string;
  state: RunState;
  started?: number | null;
  finished?: number | null;
  duration?: number | null;
  metrics?: { [name: string]: JSONValue };
  outputs?: { [name: string]: string };
  error?: { [key: string]: JSONValue } | null;
  cached_from?: string | null;
}

export interface IRun {
  id: string;
  notebook: string;
  state: RunState;
  backend: string;
  created: number;
  started?: number | null;
  finished?: number | null;
  duration?: number | null;
  params: { [name: string]: JSONValue };
  metrics: { [name: string]: number };
  error?: string | null;
  steps?: IRunStep[];
  /** The graph the run was started with, when the server includes it. */
  graph?: Pick<IGraph, 'steps' | 'edges'> | null;
  /** Edges of the run's graph, when the server sends them on their own. */
  edges?: [string, string][];
}

export interface ILogs {
  stdout: string;
  stderr: string;
}

export interface ICompileResult {
  yaml: string;
  saved_to?: string | null;
}

/** The data of a run-state event (schema version 1). */
export interface IRunStateEvent {
  run_id: string;
  notebook: string;
  /** Empty for the run itself. */
  step: string;
  state: string;
  duration?: number | null;
}

/** A searched parameter as Katib writes it. */
export interface IKatibParameter {
  name: string;
  parameterType: 'int' | 'double' | 'categorical' | 'discrete';
  feasibleSpace: {
    min?: string;
    max?: string;
    step?: string;
    list?: string[];
    distribution?: 'uniform' | 'logUniform';
  };
}

/** The body of POST /mlk/api/sweeps. */
export interface ISweepRequest {
  path: string;
  objective: string;
  goal: 'maximize' | 'minimize';
  target?: number;
  algorithm: string;
  max_trials: number;
  parallel: number;
  max_failed: number;
  parameters: IKatibParameter[];
  params?: { [name: string]: string };
}

/** The answer to POST /mlk/api/sweeps. */
export interface ISweepStarted {
  id: string;
  state: string;
  warnings?: string[];
}

/** One parameter of a stored sweep spec (the server's SweepParameter). */
export interface ISweepSpecParameter {
  name: string;
  type: string;
  min?: number | null;
  max?: number | null;
  step?: number | null;
  values?: string[];
  log?: boolean;
}

/** The stored sweep spec, as the server keeps it. */
export interface ISweepSpec {
  objective: string;
  goal: 'maximize' | 'minimize';
  target?: number | null;
  algorithm: string;
  parallel: number;
  max_trials: number;
  max_failed: number;
  parameters: ISweepSpecParameter[];
}

export interface ITrial {
  number: number;
  run_id?: string | null;
  params: { [name: string]: JSONValue };
  state: string;
  objective?: number | null;
  error?: string | null;
  started?: number | null;
  finished?: number | null;
}

export interface IBestTrial {
  number: number;
  objective: number;
  params: { [name: string]: JSONValue };
  run_id?: string | null;
}

export interface ISweep {
  id: string;
  notebook: string;
  state: 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
  spec: ISweepSpec;
  base_params?: { [name: string]: JSONValue };
  created?: number;
  started?: number | null;
  finished?: number | null;
  reason?: string | null;
  best?: IBestTrial | null;
  /** Present on GET /mlk/api/sweeps/{id}, absent in the list. */
  trials?: ITrial[];
}

/** The data of a sweep-state event (schema version 1). */
export interface ISweepStateEvent {
  sweep_id: string;
  /** -1 for the sweep itself. */
  trial: number;
  state: string;
  objective?: number | null;
}

/** A notebook server of the launcher (no token: the server asks for it). */
/** An ``if:`` condition of a step, as the graph JSON gives it. */
export interface ICondition {
  text: string;
  left: string;
  op: string;
  right: JSONValue;
  right_is_parameter: boolean;
}

export interface IServer {
  id: string;
  name: string;
  owner?: string;
  backend: string;
  state: string;
  stage: string;
  url: string;
  /** Our redirect to a ready local server with its token (GET, signed in). */
  open_url?: string;
  gpus?: string[];
  profile?: string;
  idle_timeout?: number;
  error?: string;
  error_code?: string;
  created_at?: number;
  ready_at?: number | null;
  stopped_at?: number | null;
}

export interface IServerProfile {
  name: string;
  display_name?: string;
  description?: string;
  gpus?: number;
  memory?: string;
  cpu?: string;
}

/** The body of POST /mlk/api/servers. */
export interface ILaunchRequest {
  name: string;
  profile?: string;
  backend?: 'local' | 'kubernetes';
  cpu?: string;
  memory?: string;
  gpus?: number;
  idle_timeout?: string;
}

/** The data of a launch event (schema version 1). */
export interface ILaunchEvent {
  name: string;
  stage: string;
  message: string;
}

/** Where a deployed version came from: the run, step and value, or a file. */
export interface ILineage {
  run_id?: string;
  step?: string;
  variable?: string;
  notebook?: string;
  path?: string;
  sha256?: string;
  [key: string]: JSONValue | undefined;
}

export interface IDeploymentVersion {
  version: number;
  model_ref: string;
  format: string;
  lineage: ILineage;
  status: string;
  error?: string | null;
  created?: string | number | null;
  storage_uri?: string | null;
}

export interface ITrafficShare {
  version: number;
  role: 'stable' | 'canary';
  percent: number;
}

/** A deployment as GET /mlk/api/deployments lists it. */
export interface IDeployment {
  name: string;
  backend: string;
  namespace?: string | null;
  status: 'RUNNING' | 'PENDING' | 'FAILED' | 'STOPPED' | string;
  url?: string | null;
  endpoints?: { v1?: string | null; v2?: string | null };
  traffic: ITrafficShare[];
  versions: IDeploymentVersion[];
  created?: string | number | null;
  updated?: string | number | null;
}

/** The body of POST /mlk/api/deployments. */
export interface IDeployRequest {
  /** `RUN:VARIABLE` or `RUN:STEP/VARIABLE` (or a file, an s3:// URI). */
  model: string;
  name: string;
  canary_percent?: number;
  backend?: 'local' | 'kubernetes';
}

/** The REST API of the server extension, one method per route. */
export interface IMlkApi {
  getGraph(path: string, content?: JSONValue): Promise<IGraph>;
  listRuns(options?: { path?: string; limit?: number }): Promise<IRun[]>;
  startRun(
    path: string,
    params: { [name: string]: string },
    options?: { noCache?: boolean }
  ): Promise<IRun>;
  getRun(runId: string): Promise<IRun>;
  cancelRun(runId: string): Promise<IRun>;
  getLogs(runId: string, step: string): Promise<ILogs>;
  getStepNotebook(runId: string, step: string): Promise<JSONValue>;
  compile(
    path: string,
    options?: { save?: boolean; image?: string }
  ): Promise<ICompileResult>;
  listSweeps(): Promise<ISweep[]>;
  startSweep(request: ISweepRequest): Promise<ISweepStarted>;
  getSweep(sweepId: string): Promise<ISweep>;
  cancelSweep(sweepId: string): Promise<ISweep>;
  listServers(): Promise<{ servers: IServer[]; profiles: IServerProfile[] }>;
  launchServer(
    request: ILaunchRequest
  ): Promise<{ name: string; state: string }>;
  stopServer(name: string): Promise<IServer>;
  listDeployments(): Promise<IDeployment[]>;
  deploy(request: IDeployRequest): Promise<IDeployment>;
  undeploy(name: string): Promise<{ name: string; removed: boolean }>;
  promoteDeployment(name: string): Promise<IDeployment>;
  rollbackDeployment(name: string): Promise<IDeployment>;
  setDeploymentTraffic(name: string, percent: number): Promise<IDeployment>;
  /** The model's answer to `data`: rows, a V1 body or a V2 body. */
  predict(name: string, data: JSONValue): Promise<JSONValue>;
}

/** One cell of the current notebook, as the tag editor needs it. */
export interface ICellInfo {
  index: number;
  id: string;
  cellType: string;
  tags: string[];
}

/**
 * The notebook the panel follows, seen through what the model needs; the
 * panel plugin adapts a NotebookPanel to it.
 */
export interface INotebookSource {
  readonly path: string;
  readonly isDirty: boolean;
  /** The unsaved notebook as nbformat JSON. */
  content(): JSONValue;
  save(): Promise<void>;
  activeCell(): ICellInfo | null;
  setCellTags(index: number, tags: string[]): void;
  /** Marks the cells of the selected step (none: clears). */
  highlightCells(indices: number[]): void;
  revealCell(index: number): void;
}

/** Tunables of the model, from the settings. */
export interface IModelOptions {
  /** How many runs the history shows. */
  runsLimit?: number;
  /**
   * Seconds between two fallback fetches of a watched run while it is active,
   * when no event about it arrived in between. 0 disables the fallback.
   */
  pollInterval?: number;
  /** Milliseconds to wait after an edit before the graph is fetched again. */
  refreshDelay?: number;
}

/** The panel's state: the current notebook's graph, the runs and the selection. */
export interface IMlkModel {
  readonly graph: IGraph | null;
  readonly graphError: string | null;
  readonly runs: IRun[];
  readonly activeCell: ICellInfo | null;
  readonly selectedStep: string | null;
  readonly serverMissing: boolean;
  readonly notebook: INotebookSource | null;
  readonly graphChanged: ISignal<IMlkModel, IGraph | null>;
  readonly runsChanged: ISignal<IMlkModel, IRun[]>;
  readonly runChanged: ISignal<IMlkModel, IRun>;
  readonly selectedStepChanged: ISignal<IMlkModel, string | null>;
  readonly activeCellChanged: ISignal<IMlkModel, ICellInfo | null>;
  readonly notebookChanged: ISignal<IMlkModel, INotebookSource | null>;
  readonly serverStatusChanged: ISignal<IMlkModel, boolean>;
  readonly api: IMlkApi;
  /** Applies new settings. */
  configure(options: IModelOptions): void;
  /** Follows another notebook (or none); its graph is fetched at once. */
  setNotebook(notebook: INotebookSource | null): void;
  /** Reads the active cell again from the notebook. */
  updateActiveCell(): void;
  /** Fetches the graph again after the refresh delay. */
  scheduleRefresh(): void;
  /** Shows a cell of the current notebook. */
  revealCell(index: number): void;
  /** Handles one run-state event from the server's event bus. */
  handleRunEvent(event: IRunStateEvent): void;
  unwatchRun(runId: string): void;
  getRun(runId: string): IRun | undefined;
  refreshGraph(): Promise<void>;
  refreshRuns(): Promise<void>;
  fetchRun(runId: string): Promise<IRun>;
  startRun(
    params: { [name: string]: string },
    options?: { noCache?: boolean }
  ): Promise<IRun>;
  cancelRun(runId: string): Promise<void>;
  selectStep(name: string | null): void;
  setCellTags(tags: string[]): void;
  watchRun(runId: string): void;
}

export const IMlkModel = new Token<IMlkModel>(
  'jupyter-mlk:IMlkModel',
  'The jupyter_mlk panel state: graph, runs and selection.'
);

/** The sidebar, to which feature plugins add their sections. */
export interface IMlkSidebar {
  /**
   * Adds a section below the others.
   *
   * @param widget - the section; its title is the section's header
   * @param size - its share of the height, relative to the others'
   */
  addSection(widget: Widget, size: number): void;
}

export const IMlkSidebar = new Token<IMlkSidebar>(
  'jupyter-mlk:IMlkSidebar',
  'The jupyter_mlk sidebar, to add sections to.'
);
