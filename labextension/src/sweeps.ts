/**
 * The sweeps' state: the list of the workspace's sweeps and the sweeps whose
 * views are open, kept fresh by sweep-state events with a slow fallback poll.
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  IMlkApi,
  INotebookSource,
  ISweep,
  ISweepRequest,
  ISweepStarted,
  ISweepStateEvent
} from './tokens';
import { FallbackPoll } from './poll';

/** Sweep states after which nothing changes any more. */
export const SWEEP_FINAL_STATES: ReadonlySet<string> = new Set([
  'SUCCEEDED',
  'FAILED',
  'CANCELLED'
]);

/** The sweeps of the workspace and the ones being watched. */
export class SweepsModel {
  constructor(
    readonly api: IMlkApi,
    options: { pollInterval?: number } = {}
  ) {
    this.configure(options);
  }

  get sweeps(): ISweep[] {
    return this._sweeps;
  }
  /** The list changed. */
  get sweepsChanged(): ISignal<this, ISweep[]> {
    return this._sweepsChanged;
  }
  /** A watched sweep changed (its trials included). */
  get sweepChanged(): ISignal<this, ISweep> {
    return this._sweepChanged;
  }

  /**
   * Applies settings: seconds between fallback fetches of a watched active
   * sweep that had no event in between; 0 turns the fallback off.
   */
  configure(options: { pollInterval?: number }): void {
    this._pollInterval = options.pollInterval ?? this._pollInterval;
  }

  /** The latest known state of a sweep, trials included when watched. */
  getSweep(sweepId: string): ISweep | undefined {
    return (
      this._detailed.get(sweepId) ?? this._sweeps.find(s => s.id === sweepId)
    );
  }

  async refreshSweeps(): Promise<void> {
    this._sweeps = await this.api.listSweeps();
    this._sweepsChanged.emit(this._sweeps);
  }

  /**
   * Starts a sweep of `notebook`, saving it first: the server reads the file
   * on disk.
   */
  async startSweep(
    notebook: INotebookSource | null,
    request: ISweepRequest
  ): Promise<ISweepStarted> {
    if (notebook && notebook.path === request.path && notebook.isDirty) {
      await notebook.save();
    }
    const started = await this.api.startSweep(request);
    void this.refreshSweeps().catch(() => undefined);
    return started;
  }

  /** Asks the server to cancel a sweep; it answers once the sweep stopped. */
  async cancelSweep(sweepId: string): Promise<void> {
    this._store(await this.api.cancelSweep(sweepId));
    void this.fetchSweep(sweepId).catch(() => undefined);
  }

  /**
   * Fetches one sweep with its trials; a call made while one is in flight
   * fetches once more after it, so a burst of events costs two requests.
   */
  fetchSweep(sweepId: string): Promise<ISweep> {
    const inFlight = this._fetching.get(sweepId);
    if (inFlight) {
      this._fetchAgain.add(sweepId);
      return inFlight;
    }
    const request = this.api
      .getSweep(sweepId)
      .then(sweep => {
        this._store(sweep);
        return sweep;
      })
      .finally(() => {
        this._fetching.delete(sweepId);
        if (this._fetchAgain.delete(sweepId)) {
          void this.fetchSweep(sweepId).catch(() => undefined);
        }
      });
    this._fetching.set(sweepId, request);
    return request;
  }

  /** Keeps a sweep's trials up to date while its view is open. */
  watchSweep(sweepId: string): void {
    this._watched.add(sweepId);
    void this.fetchSweep(sweepId).catch(() => undefined);
    this._poll.ensure();
  }

  unwatchSweep(sweepId: string): void {
    this._watched.delete(sweepId);
  }

  /** Handles one sweep-state event from the server's event bus. */
  handleSweepEvent(event: ISweepStateEvent): void {
    this._lastEvent.set(event.sweep_id, Date.now());
    const listed = this._sweeps.find(s => s.id === event.sweep_id);
    if (event.trial === -1 && listed && listed.state !== event.state) {
      this._sweeps = this._sweeps.map(s =>
        s.id === event.sweep_id
          ? { ...s, state: event.state as ISweep['state'] }
          : s
      );
      this._sweepsChanged.emit(this._sweeps);
    }
    if (this._watched.has(event.sweep_id)) {
      void this.fetchSweep(event.sweep_id).catch(() => undefined);
    }
    if (
      !listed ||
      (event.trial === -1 && SWEEP_FINAL_STATES.has(event.state))
    ) {
      // A sweep started elsewhere (CLI, magics), or one that ended and now
      // has its best trial.
      this._scheduleListRefresh();
    }
  }

  dispose(): void {
    clearTimeout(this._listTimer);
    this._poll.stop();
    Signal.clearData(this);
  }

  private _store(sweep: ISweep): void {
    const known = this._detailed.get(sweep.id);
    if (sweep.trials || known) {
      sweep = sweep.trials ? sweep : { ...sweep, trials: known!.trials };
      this._detailed.set(sweep.id, sweep);
    }
    const entry: ISweep = { ...sweep };
    delete entry.trials;
    const index = this._sweeps.findIndex(s => s.id === sweep.id);
    this._sweeps =
      index >= 0
        ? this._sweeps.map((s, i) => (i === index ? entry : s))
        : [entry, ...this._sweeps];
    this._sweepChanged.emit(sweep);
    this._sweepsChanged.emit(this._sweeps);
  }

  private _scheduleListRefresh(): void {
    clearTimeout(this._listTimer);
    this._listTimer = setTimeout(
      () => void this.refreshSweeps().catch(() => undefined),
      300
    );
  }

  private _sweeps: ISweep[] = [];
  private _detailed = new Map<string, ISweep>();
  private _watched = new Set<string>();
  private _fetching = new Map<string, Promise<ISweep>>();
  private _fetchAgain = new Set<string>();
  private _lastEvent = new Map<string, number>();
  private _pollInterval = 5;
  private _listTimer = 0;
  private _poll = new FallbackPoll({
    interval: () => this._pollInterval,
    pending: () =>
      [...this._watched].filter(id => {
        const sweep = this._detailed.get(id);
        return !sweep || !SWEEP_FINAL_STATES.has(sweep.state);
      }),
    lastEvent: id => this._lastEvent.get(id) ?? 0,
    fetch: id => this.fetchSweep(id)
  });
  private _sweepsChanged = new Signal<this, ISweep[]>(this);
  private _sweepChanged = new Signal<this, ISweep>(this);
}
