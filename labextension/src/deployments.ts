/**
 * Deployed models: the list (polled while the section is visible, since no
 * event tells of a deployment's changes), the deploy request built from a run's
 * output, the canary slider's logic and the "try it" request (pure functions,
 * so the unit tests cover them).
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  IDeployment,
  IDeploymentVersion,
  IDeployRequest,
  IMlkApi,
  IRun,
  IRunStep,
  JSONValue
} from './tokens';

/** The rows the "try it" box starts with: one iris flower. */
export const SAMPLE_ROWS = '[[5.1, 3.5, 1.4, 0.2]]';

/** Seconds between two fetches of the list while the section is shown. */
export const DEPLOYMENTS_POLL_SECONDS = 5;

/** Step states whose outputs exist and can be deployed. */
const DEPLOYABLE_STEP_STATES: ReadonlySet<string> = new Set([
  'SUCCEEDED',
  'CACHED'
]);

/** The deploy dialog as typed. */
export interface IDeployForm {
  name: string;
  canaryPercent: string;
}

/**
 * The values of a step that can be deployed: the value bundles it wrote (the
 * run's `outputs`), with the graph's output names when the run carries its
 * graph. None while the step has not finished well.
 */
export function deployableOutputs(run: IRun, step: IRunStep): string[] {
  if (!DEPLOYABLE_STEP_STATES.has(step.state)) {
    return [];
  }
  const names = new Set(Object.keys(step.outputs ?? {}));
  const graphStep = run.graph?.steps.find(s => s.name === step.name);
  for (const name of graphStep?.outputs ?? []) {
    names.add(name);
  }
  return [...names].sort();
}

/** The model reference of a run's value: `RUN:STEP/VARIABLE`. */
export function modelRef(
  runId: string,
  step: string,
  variable: string
): string {
  return `${runId}:${step}/${variable}`;
}

/**
 * A deployment name the server accepts (lowercase letters, digits and `-`,
 * starting with a letter, at most 45 characters) made from any text, e.g. the
 * notebook's name: the dialog's suggestion.
 */
export function suggestName(text: string): string {
  const slug = text
    .toLowerCase()
    .replace(/\.ipynb$/, '')
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, 45)
    .replace(/-+$/, '');
  return slug || 'model';
}

/**
 * The body of POST /mlk/api/deployments for a run's value; or the problems
 * with the form. The server checks the name again and suggests a valid one.
 */
export function buildDeployRequest(
  model: string,
  form: IDeployForm
):
  | { request: IDeployRequest; errors: [] }
  | { request: null; errors: string[] } {
  const errors: string[] = [];
  const name = form.name.trim();
  if (!name) {
    errors.push('Give the deployment a name.');
  }
  const request: IDeployRequest = { model, name };
  const canary = form.canaryPercent.trim();
  if (canary) {
    const percent = Number(canary);
    if (!Number.isInteger(percent) || percent < 1 || percent > 99) {
      errors.push(
        `Canary: "${canary}" must be a whole number from 1 to 99, or empty.`
      );
    } else {
      request.canary_percent = percent;
    }
  }
  return errors.length ? { request: null, errors } : { request, errors: [] };
}

/** The canary's share of the traffic, or null when there is no canary. */
export function canaryPercent(deployment: IDeployment): number | null {
  const canary = deployment.traffic.find(t => t.role === 'canary');
  return canary ? canary.percent : null;
}

/** The version with a role in the traffic split, if any. */
export function versionOf(
  deployment: IDeployment,
  role: 'stable' | 'canary'
): IDeploymentVersion | null {
  const share = deployment.traffic.find(t => t.role === role);
  return share
    ? (deployment.versions.find(v => v.version === share.version) ?? null)
    : null;
}

/**
 * The percent to send when the slider is released: the dragged value as a
 * whole number in 0..100, or null when it equals the server's (nothing to do).
 */
export function trafficToCommit(
  current: number | null,
  dragged: number | null
): number | null {
  if (dragged === null || Number.isNaN(dragged)) {
    return null;
  }
  const percent = Math.min(100, Math.max(0, Math.round(dragged)));
  return percent === current ? null : percent;
}

/** Who made a version, as a line: run, step and value, or the file. */
export function describeLineage(version: IDeploymentVersion): string {
  const { run_id, step, variable, path } = version.lineage;
  if (run_id) {
    const value = [step, variable].filter(Boolean).join('/');
    return value ? `run ${run_id} · ${value}` : `run ${run_id}`;
  }
  return path ? String(path) : version.model_ref;
}

/**
 * What the "try it" box sends as `data` (rows, a V1 or a V2 body, as the
 * server reads them), or why the text cannot be sent.
 */
export function parseTryIt(
  text: string
): { data: JSONValue; error: null } | { data: null; error: string } {
  if (!text.trim()) {
    return { data: null, error: 'Write the rows to send, e.g. ' + SAMPLE_ROWS };
  }
  let data: JSONValue;
  try {
    data = JSON.parse(text) as JSONValue;
  } catch (error) {
    return {
      data: null,
      error: `Not JSON: ${(error as Error).message}. Send a list of rows, e.g. ${SAMPLE_ROWS}`
    };
  }
  const isBody =
    typeof data === 'object' &&
    data !== null &&
    !Array.isArray(data) &&
    ('instances' in data || 'inputs' in data);
  if (!Array.isArray(data) && !isBody) {
    return {
      data: null,
      error: `Send a list of rows (e.g. ${SAMPLE_ROWS}), a V1 body {"instances": …} or a V2 body {"inputs": …}.`
    };
  }
  return { data, error: null };
}

/** The workspace's deployments, fetched on demand and polled while shown. */
export class DeploymentsModel {
  constructor(
    readonly api: IMlkApi,
    options: { pollInterval?: number } = {}
  ) {
    this._pollInterval = options.pollInterval ?? DEPLOYMENTS_POLL_SECONDS;
  }

  get deployments(): IDeployment[] {
    return this._deployments;
  }
  get changed(): ISignal<this, void> {
    return this._changed;
  }
  /** Whether the list has been fetched once. */
  get loaded(): boolean {
    return this._loaded;
  }

  async refresh(): Promise<void> {
    this._deployments = await this.api.listDeployments();
    this._loaded = true;
    this._changed.emit();
  }

  /** Polls the list while `visible` (the section is shown), from now on. */
  setVisible(visible: boolean): void {
    clearInterval(this._pollTimer);
    this._pollTimer = 0;
    if (!visible) {
      return;
    }
    void this.refresh().catch(() => undefined);
    if (this._pollInterval > 0) {
      this._pollTimer = setInterval(
        () => void this.refresh().catch(() => undefined),
        this._pollInterval * 1000
      );
    }
  }

  async deploy(request: IDeployRequest): Promise<IDeployment> {
    const deployment = await this.api.deploy(request);
    this._replace(deployment);
    return deployment;
  }

  async undeploy(name: string): Promise<void> {
    await this.api.undeploy(name);
    this._deployments = this._deployments.filter(d => d.name !== name);
    this._changed.emit();
  }

  async promote(name: string): Promise<void> {
    this._replace(await this.api.promoteDeployment(name));
  }

  async rollback(name: string): Promise<void> {
    this._replace(await this.api.rollbackDeployment(name));
  }

  async setTraffic(name: string, percent: number): Promise<void> {
    this._replace(await this.api.setDeploymentTraffic(name, percent));
  }

  predict(name: string, data: JSONValue): Promise<JSONValue> {
    return this.api.predict(name, data);
  }

  dispose(): void {
    clearInterval(this._pollTimer);
    Signal.clearData(this);
  }

  /** Puts a deployment the server answered with in the list. */
  private _replace(deployment: IDeployment): void {
    const known = this._deployments.some(d => d.name === deployment.name);
    this._deployments = known
      ? this._deployments.map(d =>
          d.name === deployment.name ? deployment : d
        )
      : [...this._deployments, deployment].sort((a, b) =>
          a.name.localeCompare(b.name)
        );
    this._changed.emit();
  }

  private _deployments: IDeployment[] = [];
  private _loaded = false;
  private _pollInterval: number;
  private _pollTimer = 0;
  private _changed = new Signal<this, void>(this);
}
