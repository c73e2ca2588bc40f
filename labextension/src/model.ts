/**
 * The panel's state: the current notebook's step graph, the run history and
 * the runs being watched, with a Lumino signal for each kind of change.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { MlkRequestError } from './request';
import {
  FINAL_STATES,
  ICellInfo,
  IGraph,
  IMlkApi,
  IMlkModel,
  IModelOptions,
  INotebookSource,
  IRun,
  IRunStateEvent
} from './tokens';
import { FallbackPoll } from './poll';

/** The state behind the sidebar and the run views. */
export class MlkModel implements IMlkModel {
  constructor(
    readonly api: IMlkApi,
    options: IModelOptions = {}
  ) {
    this.configure(options);
  }

  get graph(): IGraph | null {
    return this._graph;
  }
  get graphError(): string | null {
    return this._graphError;
  }
  get runs(): IRun[] {
    return this._runs;
  }
  get activeCell(): ICellInfo | null {
    return this._activeCell;
  }
  get selectedStep(): string | null {
    return this._selectedStep;
  }
  get serverMissing(): boolean {
    return this._serverMissing;
  }
  get notebook(): INotebookSource | null {
    return this._notebook;
  }
  get isDisposed(): boolean {
    return this._isDisposed;
  }

  get graphChanged(): ISignal<this, IGraph | null> {
    return this._graphChanged;
  }
  get runsChanged(): ISignal<this, IRun[]> {
    return this._runsChanged;
  }
  /** A watched run changed (its steps included). */
  get runChanged(): ISignal<this, IRun> {
    return this._runChanged;
  }
  get selectedStepChanged(): ISignal<this, string | null> {
    return this._selectedStepChanged;
  }
  get activeCellChanged(): ISignal<this, ICellInfo | null> {
    return this._activeCellChanged;
  }
  get notebookChanged(): ISignal<this, INotebookSource | null> {
    return this._notebookChanged;
  }
  get serverStatusChanged(): ISignal<this, boolean> {
    return this._serverStatusChanged;
  }

  /** Applies new settings. */
  configure(options: IModelOptions): void {
    this._runsLimit = options.runsLimit ?? this._runsLimit;
    this._pollInterval = options.pollInterval ?? this._pollInterval;
    this._refreshDelay = options.refreshDelay ?? this._refreshDelay;
  }

  /** Follows another notebook (or none); its graph is fetched at once. */
  setNotebook(notebook: INotebookSource | null): void {
    if (notebook === this._notebook) {
      return;
    }
    this._notebook?.highlightCells([]);
    this._notebook = notebook;
    this._selectedStep = null;
    this._graph = null;
    this._graphError = null;
    this._notebookChanged.emit(notebook);
    this._selectedStepChanged.emit(null);
    this._graphChanged.emit(null);
    this.updateActiveCell();
    if (notebook) {
      void this.refreshGraph();
    }
  }

  /** Reads the active cell again from the notebook (after a move or an edit). */
  updateActiveCell(): void {
    const cell = this._notebook?.activeCell() ?? null;
    if (sameCell(cell, this._activeCell)) {
      return;
    }
    this._activeCell = cell;
    this._activeCellChanged.emit(cell);
  }

  /** Fetches the graph of the notebook's current (possibly unsaved) content. */
  async refreshGraph(): Promise<void> {
    clearTimeout(this._refreshTimer);
    const notebook = this._notebook;
    if (!notebook) {
      return;
    }
    const ticket = ++this._graphTicket;
    try {
      const graph = await this.api.getGraph(notebook.path, notebook.content());
      if (ticket !== this._graphTicket || notebook !== this._notebook) {
        return; // a newer request or another notebook won the race
      }
      this._setServerMissing(false);
      this._graph = graph;
      this._graphError = null;
    } catch (error) {
      if (ticket !== this._graphTicket) {
        return;
      }
      this._noteError(error);
      this._graphError = messageOf(error);
    }
    if (this._selectedStep && !this._hasStep(this._selectedStep)) {
      this.selectStep(null);
    }
    this._highlight();
    this._graphChanged.emit(this._graph);
  }

  /** Fetches the graph again after the refresh delay (edits come in bursts). */
  scheduleRefresh(): void {
    clearTimeout(this._refreshTimer);
    this._refreshTimer = setTimeout(
      () => void this.refreshGraph(),
      this._refreshDelay
    );
  }

  /** Fetches the run history. */
  async refreshRuns(): Promise<void> {
    try {
      const runs = await this.api.listRuns({ limit: this._runsLimit });
      this._setServerMissing(false);
      this._runs = runs.map(run => {
        const known = this._detailed.get(run.id);
        return known ? { ...run, steps: known.steps } : run;
      });
      this._runsChanged.emit(this._runs);
    } catch (error) {
      this._noteError(error);
      throw error;
    }
  }

  /** The latest known state of a run, steps included when it is watched. */
  getRun(runId: string): IRun | undefined {
    return this._detailed.get(runId) ?? this._runs.find(r => r.id === runId);
  }

  /**
   * Fetches one run with its steps. Concurrent calls for one run share a
   * request, and a call made while one is in flight fetches once more after it,
   * so a burst of events costs at most two requests.
   */
  fetchRun(runId: string): Promise<IRun> {
    const inFlight = this._fetching.get(runId);
    if (inFlight) {
      this._fetchAgain.add(runId);
      return inFlight;
    }
    const request = this.api
      .getRun(runId)
      .then(run => {
        this._storeRun(run);
        return run;
      })
      .finally(() => {
        this._fetching.delete(runId);
        if (this._fetchAgain.delete(runId)) {
          void this.fetchRun(runId).catch(() => undefined);
        }
      });
    this._fetching.set(runId, request);
    return request;
  }

  /**
   * Starts a run of the current notebook, saving it first: the server runs
   * the file on disk.
   */
  async startRun(
    params: { [name: string]: string },
    options: { noCache?: boolean } = {}
  ): Promise<IRun> {
    const notebook = this._notebook;
    if (!notebook) {
      throw new Error('Open a notebook to run it as a pipeline.');
    }
    if (notebook.isDirty) {
      await notebook.save();
    }
    const run = await this.api.startRun(notebook.path, params, options);
    this._storeRun(run);
    this.watchRun(run.id);
    void this.refreshRuns().catch(() => undefined);
    return run;
  }

  /** Asks the server to cancel a run; the events bring the outcome. */
  async cancelRun(runId: string): Promise<void> {
    const run = await this.api.cancelRun(runId);
    this._storeRun(run);
  }

  /**
   * Keeps a run's steps up to date: on each of its events, and by a slow
   * fallback fetch while it is active and its events stay away.
   */
  watchRun(runId: string): void {
    if (!this._watchedIds.has(runId)) {
      this._watchedIds.add(runId);
      void this.fetchRun(runId).catch(error => this._noteError(error));
    }
    this._poll.ensure();
  }

  /** Stops watching a run (its view was closed). */
  unwatchRun(runId: string): void {
    this._watchedIds.delete(runId);
  }

  /** Handles one run-state event from the server's event bus. */
  handleRunEvent(event: IRunStateEvent): void {
    this._lastEvent.set(event.run_id, Date.now());
    const listed = this._runs.find(r => r.id === event.run_id);
    if (event.step === '' && listed) {
      this._runs = this._runs.map(r =>
        r.id === event.run_id
          ? { ...r, state: event.state as IRun['state'] }
          : r
      );
      this._runsChanged.emit(this._runs);
    }
    if (this._watchedIds.has(event.run_id)) {
      void this.fetchRun(event.run_id).catch(() => undefined);
    }
    if (!listed || (event.step === '' && FINAL_STATES.has(event.state))) {
      // A run started elsewhere (CLI, magics), or one that just ended and
      // now has its duration and metrics.
      this._scheduleRunsRefresh();
    }
  }

  /** Selects a step of the graph; its cells are highlighted in the notebook. */
  selectStep(name: string | null): void {
    if (name === this._selectedStep) {
      return;
    }
    this._selectedStep = name;
    this._highlight();
    this._selectedStepChanged.emit(name);
  }

  /** Writes the active cell's tags, then fetches the graph again. */
  setCellTags(tags: string[]): void {
    const notebook = this._notebook;
    const cell = this._activeCell;
    if (!notebook || !cell) {
      return;
    }
    notebook.setCellTags(cell.index, tags);
    this.updateActiveCell();
    this.scheduleRefresh();
  }

  /** Shows a problem's cell. */
  revealCell(index: number): void {
    this._notebook?.revealCell(index);
    this.updateActiveCell();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    clearTimeout(this._refreshTimer);
    clearTimeout(this._runsTimer);
    this._poll.stop();
    Signal.clearData(this);
  }

  private _storeRun(run: IRun): void {
    if (run.steps) {
      this._detailed.set(run.id, run);
    } else if (this._detailed.has(run.id)) {
      // A run without steps (a list entry, a cancel answer) keeps the steps known.
      this._detailed.set(run.id, {
        ...run,
        steps: this._detailed.get(run.id)!.steps
      });
      run = this._detailed.get(run.id)!;
    }
    const index = this._runs.findIndex(r => r.id === run.id);
    if (index >= 0) {
      this._runs = [...this._runs];
      this._runs[index] = run;
    } else {
      this._runs = [run, ...this._runs];
    }
    this._runChanged.emit(run);
    this._runsChanged.emit(this._runs);
  }

  private _scheduleRunsRefresh(): void {
    clearTimeout(this._runsTimer);
    this._runsTimer = setTimeout(
      () => void this.refreshRuns().catch(() => undefined),
      300
    );
  }

  private _hasStep(name: string): boolean {
    return !!this._graph?.steps.some(s => s.name === name);
  }

  private _highlight(): void {
    const step = this._graph?.steps.find(s => s.name === this._selectedStep);
    this._notebook?.highlightCells(step ? step.cells : []);
  }

  private _noteError(error: unknown): void {
    if (error instanceof MlkRequestError) {
      this._setServerMissing(error.isServerMissing);
    }
  }

  private _setServerMissing(missing: boolean): void {
    if (missing !== this._serverMissing) {
      this._serverMissing = missing;
      this._serverStatusChanged.emit(missing);
    }
  }

  private _graph: IGraph | null = null;
  private _graphError: string | null = null;
  private _graphTicket = 0;
  private _runs: IRun[] = [];
  /** Runs known with their steps. */
  private _detailed = new Map<string, IRun>();
  /** Runs whose views are open: fetched on events and by the fallback poll. */
  private _watchedIds = new Set<string>();
  private _fetching = new Map<string, Promise<IRun>>();
  private _fetchAgain = new Set<string>();
  private _lastEvent = new Map<string, number>();
  private _activeCell: ICellInfo | null = null;
  private _selectedStep: string | null = null;
  private _serverMissing = false;
  private _notebook: INotebookSource | null = null;
  private _isDisposed = false;
  private _runsLimit = 50;
  private _pollInterval = 5;
  private _refreshDelay = 500;
  private _refreshTimer = 0;
  private _runsTimer = 0;
  private _poll = new FallbackPoll({
    interval: () => this._pollInterval,
    pending: () =>
      [...this._watchedIds].filter(id => {
        const run = this._detailed.get(id);
        return !run || !FINAL_STATES.has(run.state);
      }),
    lastEvent: id => this._lastEvent.get(id) ?? 0,
    fetch: id => this.fetchRun(id)
  });
  private _graphChanged = new Signal<this, IGraph | null>(this);
  private _runsChanged = new Signal<this, IRun[]>(this);
  private _runChanged = new Signal<this, IRun>(this);
  private _selectedStepChanged = new Signal<this, string | null>(this);
  private _activeCellChanged = new Signal<this, ICellInfo | null>(this);
  private _notebookChanged = new Signal<this, INotebookSource | null>(this);
  private _serverStatusChanged = new Signal<this, boolean>(this);
}

/** The text to show for a failed request or action. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

function sameCell(a: ICellInfo | null, b: ICellInfo | null): boolean {
  if (a === null || b === null) {
    return a === b;
  }
  return (
    a.index === b.index &&
    a.id === b.id &&
    a.cellType === b.cellType &&
    a.tags.join('\n') === b.tags.join('\n')
  );
}
