/**
 * The launcher's notebook servers with their staged progress, an open link
 * once ready and a stop button; a form launches another.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useState } from 'react';

import {
  ACTIVE_SERVER_STATES,
  buildLaunchRequest,
  EMPTY_LAUNCH_FORM,
  ILaunchForm,
  LAUNCH_STAGES,
  ServersModel
} from '../servers';
import { IServer } from '../tokens';
import { useSignals } from './useSignal';

export function ServerList(props: {
  servers: ServersModel;
  trans: TranslationBundle;
  onLaunch: (form: ILaunchForm) => Promise<boolean>;
  onStop: (name: string) => void;
}): JSX.Element {
  const { servers, trans } = props;
  useSignals(servers.changed);
  const [showForm, setShowForm] = useState(false);
  const [showStopped, setShowStopped] = useState(false);
  // Ended launches are hidden unless asked for, but a failure seen on this
  // page stays so its message can be read.
  const shown = servers.servers.filter(
    s =>
      showStopped ||
      ACTIVE_SERVER_STATES.has(s.state) ||
      (s.state === 'failed' && servers.progress(s.name).length > 0)
  );
  return (
    <div className="jp-Mlk-servers">
      <div className="jp-Mlk-sectionActions">
        <button
          className="jp-mod-styled jp-Mlk-newServer"
          aria-expanded={showForm}
          onClick={() => setShowForm(!showForm)}
        >
          {showForm ? trans.__('Close form') : trans.__('Launch server…')}
        </button>
        <label className="jp-Mlk-check">
          <input
            type="checkbox"
            checked={showStopped}
            onChange={e => setShowStopped(e.target.checked)}
          />
          {trans.__('Show ended')}
        </label>
      </div>
      {showForm && (
        <LaunchForm
          servers={servers}
          trans={trans}
          onLaunch={async form => {
            const launched = await props.onLaunch(form);
            if (launched) {
              setShowForm(false);
            }
          }}
        />
      )}
      {shown.length === 0 && (
        <div className="jp-Mlk-empty">{trans.__('No notebook servers.')}</div>
      )}
      <ul className="jp-Mlk-runList" aria-label={trans.__('Notebook servers')}>
        {shown.map(server => (
          <ServerRow
            key={server.id}
            server={server}
            servers={servers}
            trans={trans}
            onStop={() => props.onStop(server.name)}
          />
        ))}
      </ul>
    </div>
  );
}

function ServerRow(props: {
  server: IServer;
  servers: ServersModel;
  trans: TranslationBundle;
  onStop: () => void;
}): JSX.Element {
  const { server, trans } = props;
  const events = props.servers.progress(server.name);
  const last = events[events.length - 1];
  const failed = server.state === 'failed';
  const message = failed ? server.error || last?.message : last?.message;
  return (
    <li
      className="jp-Mlk-runRow jp-Mlk-serverRow"
      data-server={server.name}
      data-state={server.state}
      data-stage={server.stage}
    >
      <div className="jp-Mlk-runLine">
        <span
          className={`jp-Mlk-state jp-Mlk-serverState-${server.state}`}
          data-state={server.state}
        >
          {serverStateLabel(server.state, trans)}
        </span>
        <span className="jp-Mlk-serverName">{server.name}</span>
        <span className="jp-Mlk-runDuration">
          {server.backend}
          {server.gpus && server.gpus.length
            ? ` · ${trans._n('%1 GPU', '%1 GPUs', server.gpus.length)}`
            : ''}
        </span>
      </div>
      {server.state === 'starting' && (
        <StageBar stage={server.stage} backend={server.backend} />
      )}
      {message && (server.state === 'starting' || failed) && (
        <div
          className={failed ? 'jp-Mlk-serverError' : 'jp-Mlk-runDetail'}
          role={failed ? 'alert' : undefined}
        >
          {message}
        </div>
      )}
      {server.profile && (
        <div className="jp-Mlk-runDetail">
          <span className="jp-Mlk-runKey">{trans.__('profile')}</span>{' '}
          {server.profile}
        </div>
      )}
      {server.url && server.state === 'ready' && (
        <div className="jp-Mlk-runDetail" title={server.url}>
          <span className="jp-Mlk-runKey">{trans.__('url')}</span> {server.url}
        </div>
      )}
      {ACTIVE_SERVER_STATES.has(server.state) && (
        <div className="jp-Mlk-serverActions">
          {server.state === 'ready' && server.url && (
            <a
              className="jp-Mlk-openServer"
              href={server.url}
              target="_blank"
              rel="noopener noreferrer"
              title={trans.__(
                'Opens %1 in a new tab; the server asks for its token (jupyter mlk servers shows how to get it).',
                server.url
              )}
            >
              {trans.__('Open')}
            </a>
          )}
          <button
            className="jp-mod-styled jp-mod-warn jp-Mlk-stopServer"
            onClick={props.onStop}
          >
            {trans.__('Stop')}
          </button>
        </div>
      )}
    </li>
  );
}

/** The launch stages as steps, those passed marked; no fake percentage. */
function StageBar(props: { stage: string; backend: string }): JSX.Element {
  const stages = LAUNCH_STAGES.filter(
    s => s !== 'pulling' || props.backend !== 'local'
  );
  const reached = stages.indexOf(props.stage as (typeof stages)[number]);
  return (
    <ol className="jp-Mlk-stages">
      {stages.map((stage, i) => (
        <li
          key={stage}
          className={
            i < reached
              ? 'jp-mod-done'
              : i === reached
                ? 'jp-mod-current'
                : undefined
          }
        >
          {stage}
        </li>
      ))}
    </ol>
  );
}

function serverStateLabel(state: string, trans: TranslationBundle): string {
  switch (state) {
    case 'starting':
      return trans.__('Starting');
    case 'ready':
      return trans.__('Ready');
    case 'failed':
      return trans.__('Failed');
    case 'stopped':
      return trans.__('Stopped');
    default:
      return state;
  }
}

function LaunchForm(props: {
  servers: ServersModel;
  trans: TranslationBundle;
  onLaunch: (form: ILaunchForm) => Promise<void>;
}): JSX.Element {
  const { servers, trans } = props;
  const [form, setForm] = useState<ILaunchForm>(EMPTY_LAUNCH_FORM);
  const [errors, setErrors] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<ILaunchForm>) => setForm({ ...form, ...patch });
  const text = (
    key: 'name' | 'gpus' | 'memory' | 'cpu' | 'idleTimeout',
    label: string,
    placeholder: string
  ) => (
    <label className="jp-Mlk-field">
      <span>{label}</span>
      <input
        className="jp-mod-styled"
        name={`server-${key}`}
        placeholder={placeholder}
        value={form[key]}
        onChange={e => set({ [key]: e.target.value })}
      />
    </label>
  );
  return (
    <form
      className="jp-Mlk-launchForm"
      onSubmit={e => {
        e.preventDefault();
        const result = buildLaunchRequest(form);
        setErrors(result.errors);
        if (!result.request) {
          return;
        }
        setBusy(true);
        void props.onLaunch(form).finally(() => setBusy(false));
      }}
    >
      {text('name', trans.__('Name'), trans.__('e.g. analysis'))}
      <label className="jp-Mlk-field">
        <span>{trans.__('Profile')}</span>
        <select
          className="jp-mod-styled"
          name="server-profile"
          value={form.profile}
          onChange={e => set({ profile: e.target.value })}
        >
          <option value="">{trans.__('(none: the fields below)')}</option>
          {servers.profiles.map(p => (
            <option key={p.name} value={p.name}>
              {p.display_name || p.name}
            </option>
          ))}
        </select>
      </label>
      <label className="jp-Mlk-field">
        <span>{trans.__('Backend')}</span>
        <select
          className="jp-mod-styled"
          name="server-backend"
          value={form.backend}
          onChange={e =>
            set({ backend: e.target.value as ILaunchForm['backend'] })
          }
        >
          <option value="">{trans.__('default')}</option>
          <option value="local">{trans.__('local process')}</option>
          <option value="kubernetes">{trans.__('Kubernetes pod')}</option>
        </select>
      </label>
      <div className="jp-Mlk-formGrid">
        {text('gpus', trans.__('GPUs'), '0')}
        {text('memory', trans.__('Memory'), '16Gi')}
        {text('cpu', trans.__('CPU'), '2')}
        {text('idleTimeout', trans.__('Idle timeout'), '30m')}
      </div>
      {errors.length > 0 && (
        <ul className="jp-Mlk-formErrors" role="alert">
          {errors.map(error => (
            <li key={error}>{error}</li>
          ))}
        </ul>
      )}
      <div className="jp-Mlk-formActions">
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept jp-Mlk-launchServer"
          disabled={busy}
        >
          {busy ? trans.__('Launching…') : trans.__('Launch')}
        </button>
      </div>
    </form>
  );
}
