/**
 * The notebook servers of the launcher: the list and profiles, each launch's
 * staged progress from launch events, and the launch request built from the
 * form (pure, so the unit tests cover it).
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  IMlkApi,
  ILaunchEvent,
  ILaunchRequest,
  IServer,
  IServerProfile
} from './tokens';
import { FallbackPoll } from './poll';

/** The stages of a launch in order (`pulling` happens on clusters only). */
export const LAUNCH_STAGES = [
  'requested',
  'scheduled',
  'pulling',
  'started',
  'ready'
] as const;

/** Server states that hold resources and can be stopped. */
export const ACTIVE_SERVER_STATES: ReadonlySet<string> = new Set([
  'starting',
  'ready'
]);

/** The launch form as typed. */
export interface ILaunchForm {
  name: string;
  profile: string;
  backend: '' | 'local' | 'kubernetes';
  gpus: string;
  memory: string;
  cpu: string;
  idleTimeout: string;
}

export const EMPTY_LAUNCH_FORM: ILaunchForm = {
  name: '',
  profile: '',
  backend: '',
  gpus: '',
  memory: '',
  cpu: '',
  idleTimeout: ''
};

/**
 * The body of POST /mlk/api/servers: empty fields are left out (the profile
 * or the launcher's defaults fill them); or the problems with the form. The
 * server checks quantities (`16Gi`, `500m`, `30m`) and says how to write them.
 */
export function buildLaunchRequest(
  form: ILaunchForm
):
  | { request: ILaunchRequest; errors: [] }
  | { request: null; errors: string[] } {
  const errors: string[] = [];
  const name = form.name.trim();
  if (!name) {
    errors.push('Give the server a name.');
  }
  const request: ILaunchRequest = { name };
  if (form.profile) {
    request.profile = form.profile;
  }
  if (form.backend) {
    request.backend = form.backend;
  }
  if (form.gpus.trim()) {
    const gpus = Number(form.gpus.trim());
    if (!Number.isInteger(gpus) || gpus < 0) {
      errors.push(`GPUs: "${form.gpus}" must be a whole number, 0 or more.`);
    } else {
      request.gpus = gpus;
    }
  }
  for (const [key, text] of [
    ['memory', form.memory],
    ['cpu', form.cpu],
    ['idle_timeout', form.idleTimeout]
  ] as const) {
    if (text.trim()) {
      request[key] = text.trim();
    }
  }
  return errors.length ? { request: null, errors } : { request, errors: [] };
}

/** The servers and each launch's progress since the page loaded. */
export class ServersModel {
  constructor(
    readonly api: IMlkApi,
    options: { pollInterval?: number } = {}
  ) {
    this._pollInterval = options.pollInterval ?? 5;
  }

  get servers(): IServer[] {
    return this._servers;
  }
  get profiles(): IServerProfile[] {
    return this._profiles;
  }
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  configure(options: { pollInterval?: number }): void {
    this._pollInterval = options.pollInterval ?? this._pollInterval;
  }

  /** The launch events of a server seen so far, oldest first. */
  progress(name: string): ILaunchEvent[] {
    return this._progress.get(name) ?? [];
  }

  async refresh(): Promise<void> {
    const { servers, profiles } = await this.api.listServers();
    this._servers = servers;
    this._profiles = profiles;
    this._changed.emit();
    this._poll.ensure();
  }

  /** Launches a server; its progress arrives as events. */
  async launch(request: ILaunchRequest): Promise<string> {
    const answer = await this.api.launchServer(request);
    // Its first events may have come before this answer.
    if (!this._progress.has(answer.name)) {
      this._progress.set(answer.name, []);
    }
    this._lastEvent = Date.now();
    await this.refresh();
    return answer.name;
  }

  async stop(name: string): Promise<void> {
    const stopped = await this.api.stopServer(name);
    this._servers = this._servers.map(s => (s.name === name ? stopped : s));
    this._changed.emit();
  }

  /** Handles one launch event: kept as progress, and the list is fetched. */
  handleLaunchEvent(event: ILaunchEvent): void {
    this._lastEvent = Date.now();
    this._progress.set(event.name, [...this.progress(event.name), event]);
    this._servers = this._servers.map(s =>
      s.name === event.name
        ? {
            ...s,
            stage: event.stage,
            ...(event.stage === 'failed'
              ? { state: 'failed', error: event.message }
              : {})
          }
        : s
    );
    this._changed.emit();
    clearTimeout(this._refreshTimer);
    this._refreshTimer = setTimeout(
      () => void this.refresh().catch(() => undefined),
      200
    );
  }

  dispose(): void {
    clearTimeout(this._refreshTimer);
    this._poll.stop();
    Signal.clearData(this);
  }

  private _servers: IServer[] = [];
  private _profiles: IServerProfile[] = [];
  private _progress = new Map<string, ILaunchEvent[]>();
  private _pollInterval: number;
  private _lastEvent = 0;
  private _refreshTimer = 0;
  private _poll = new FallbackPoll({
    interval: () => this._pollInterval,
    pending: () =>
      this._servers.some(s => s.state === 'starting') ? ['servers'] : [],
    lastEvent: () => this._lastEvent,
    fetch: () => this.refresh()
  });
  private _changed = new Signal<this, void>(this);
}
