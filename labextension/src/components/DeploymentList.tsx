/**
 * The workspace's deployments: status, URL, versions with their lineage, the
 * traffic split with a slider for the canary, promote, rollback, undeploy and
 * a "try it" box that sends sample rows and shows the answer.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useState } from 'react';

import {
  canaryPercent,
  DeploymentsModel,
  describeLineage,
  parseTryIt,
  SAMPLE_ROWS,
  trafficToCommit
} from '../deployments';
import { IDeployment, IDeploymentVersion, JSONValue } from '../tokens';
import { useSignals } from './useSignal';

export interface IDeploymentActions {
  onUndeploy: (name: string) => void;
  onPromote: (name: string) => void;
  onRollback: (name: string) => void;
  /** Resolves once the server has the new split (or refused it). */
  onTraffic: (name: string, percent: number) => Promise<void>;
  /** The model's answer, or null when the request failed (and was shown). */
  onPredict: (name: string, data: JSONValue) => Promise<JSONValue | null>;
}

export function DeploymentList(
  props: {
    deployments: DeploymentsModel;
    trans: TranslationBundle;
    onRefresh: () => void;
  } & IDeploymentActions
): JSX.Element {
  const { deployments, trans } = props;
  useSignals(deployments.changed);
  const list = deployments.deployments;
  return (
    <div className="jp-Mlk-deployments">
      <div className="jp-Mlk-sectionActions">
        <span className="jp-Mlk-legend">
          {trans.__('Deploy a model from a step of a run view.')}
        </span>
        <button
          className="jp-mod-styled jp-Mlk-refreshDeployments"
          onClick={props.onRefresh}
        >
          {trans.__('Refresh')}
        </button>
      </div>
      {deployments.loaded && list.length === 0 && (
        <div className="jp-Mlk-empty">{trans.__('No deployments.')}</div>
      )}
      <ul className="jp-Mlk-runList" aria-label={trans.__('Deployments')}>
        {list.map(deployment => (
          <DeploymentRow
            key={deployment.name}
            {...props}
            deployment={deployment}
          />
        ))}
      </ul>
    </div>
  );
}

function DeploymentRow(
  props: {
    deployment: IDeployment;
    trans: TranslationBundle;
  } & IDeploymentActions
): JSX.Element {
  const { deployment, trans } = props;
  const [tryOpen, setTryOpen] = useState(false);
  const canary = canaryPercent(deployment);
  const roles = new Map(deployment.traffic.map(t => [t.version, t]));
  const failed = deployment.versions.filter(
    v => v.error && (roles.has(v.version) || v.status === 'FAILED')
  );
  return (
    <li
      className="jp-Mlk-runRow jp-Mlk-deploymentRow"
      data-deployment={deployment.name}
      data-status={deployment.status}
    >
      <div className="jp-Mlk-runLine">
        <span
          className={`jp-Mlk-state jp-Mlk-deployState-${deployment.status}`}
          data-state={deployment.status}
        >
          {statusLabel(deployment.status, trans)}
        </span>
        <span className="jp-Mlk-serverName">{deployment.name}</span>
        <span className="jp-Mlk-runDuration">
          {deployment.backend}
          {deployment.namespace ? ` · ${deployment.namespace}` : ''}
        </span>
      </div>
      {deployment.status === 'STOPPED' && (
        <div className="jp-Mlk-runDetail">
          {trans.__(
            'The local inference server is not running: `jupyter mlk serve` starts it again with every deployment.'
          )}
        </div>
      )}
      {failed.map(v => (
        <div key={v.version} className="jp-Mlk-serverError" role="alert">
          {trans.__('v%1: %2', v.version, v.error ?? '')}
        </div>
      ))}
      {deployment.endpoints?.v1 && (
        <div
          className="jp-Mlk-runDetail jp-Mlk-deploymentUrl"
          title={[deployment.endpoints.v1, deployment.endpoints.v2]
            .filter(Boolean)
            .join('\n')}
        >
          <span className="jp-Mlk-runKey">{trans.__('url')}</span>{' '}
          <code>{deployment.endpoints.v1}</code>
        </div>
      )}
      <ul className="jp-Mlk-versions">
        {deployment.versions
          .filter(v => roles.has(v.version))
          .map(v => (
            <VersionLine
              key={v.version}
              version={v}
              role={roles.get(v.version)!.role}
              percent={roles.get(v.version)!.percent}
              trans={trans}
            />
          ))}
      </ul>
      {canary !== null && (
        <CanarySlider
          key={`${deployment.name}-${canary}`}
          name={deployment.name}
          percent={canary}
          trans={trans}
          onCommit={percent => props.onTraffic(deployment.name, percent)}
        />
      )}
      <div className="jp-Mlk-serverActions jp-Mlk-deploymentActions">
        <button
          className="jp-mod-styled jp-Mlk-tryIt"
          aria-expanded={tryOpen}
          onClick={() => setTryOpen(!tryOpen)}
        >
          {tryOpen ? trans.__('Hide try it') : trans.__('Try it…')}
        </button>
        {canary !== null && (
          <>
            <button
              className="jp-mod-styled jp-mod-accept jp-Mlk-promote"
              title={trans.__('The canary becomes the only version')}
              onClick={() => props.onPromote(deployment.name)}
            >
              {trans.__('Promote')}
            </button>
            <button
              className="jp-mod-styled jp-Mlk-rollback"
              title={trans.__('Drop the canary')}
              onClick={() => props.onRollback(deployment.name)}
            >
              {trans.__('Rollback')}
            </button>
          </>
        )}
        <button
          className="jp-mod-styled jp-mod-warn jp-Mlk-undeploy"
          onClick={() => props.onUndeploy(deployment.name)}
        >
          {trans.__('Undeploy')}
        </button>
      </div>
      {tryOpen && (
        <TryIt name={deployment.name} trans={trans} onSend={props.onPredict} />
      )}
    </li>
  );
}

function VersionLine(props: {
  version: IDeploymentVersion;
  role: string;
  percent: number;
  trans: TranslationBundle;
}): JSX.Element {
  const { version, trans } = props;
  return (
    <li
      className="jp-Mlk-version"
      data-version={version.version}
      data-role={props.role}
    >
      <div className="jp-Mlk-runLine">
        <span className="jp-Mlk-versionName">
          {trans.__('v%1', version.version)}
        </span>
        <span className="jp-Mlk-versionRole">
          {props.role === 'canary'
            ? trans.__('canary %1%', props.percent)
            : trans.__('stable %1%', props.percent)}
        </span>
        <span className="jp-Mlk-runDuration">
          {version.status === 'RUNNING'
            ? version.format
            : `${version.format} · ${version.status}`}
        </span>
      </div>
      <div
        className="jp-Mlk-runDetail jp-Mlk-lineage"
        title={version.model_ref}
      >
        <span className="jp-Mlk-runKey">{trans.__('from')}</span>{' '}
        {describeLineage(version)}
      </div>
    </li>
  );
}

/**
 * The canary's share: dragged freely, sent when released (pointer up or a
 * key), so one drag is one change on the server.
 */
function CanarySlider(props: {
  name: string;
  percent: number;
  trans: TranslationBundle;
  onCommit: (percent: number) => Promise<void>;
}): JSX.Element {
  const { trans } = props;
  const [dragged, setDragged] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const shown = dragged ?? props.percent;
  const commit = () => {
    const percent = trafficToCommit(props.percent, dragged);
    if (percent === null) {
      setDragged(null);
      return;
    }
    setBusy(true);
    void props.onCommit(percent).finally(() => {
      setBusy(false);
      setDragged(null);
    });
  };
  return (
    <label className="jp-Mlk-canary">
      <span className="jp-Mlk-runKey">{trans.__('canary')}</span>
      <input
        type="range"
        min={0}
        max={100}
        step={1}
        name={`canary-${props.name}`}
        value={shown}
        disabled={busy}
        aria-label={trans.__('Canary share of the requests, percent')}
        onChange={e => setDragged(Number(e.target.value))}
        onPointerUp={commit}
        onKeyUp={commit}
      />
      <span
        className="jp-Mlk-canaryValue"
        title={trans.__('%1% canary · %2% stable', shown, 100 - shown)}
      >
        {shown}%
      </span>
    </label>
  );
}

function TryIt(props: {
  name: string;
  trans: TranslationBundle;
  onSend: (name: string, data: JSONValue) => Promise<JSONValue | null>;
}): JSX.Element {
  const { trans } = props;
  const [text, setText] = useState(SAMPLE_ROWS);
  const [problem, setProblem] = useState<string | null>(null);
  const [answer, setAnswer] = useState<JSONValue | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <form
      className="jp-Mlk-tryItForm"
      onSubmit={e => {
        e.preventDefault();
        const parsed = parseTryIt(text);
        setProblem(parsed.error);
        if (parsed.error !== null) {
          return;
        }
        setBusy(true);
        setAnswer(null);
        void props
          .onSend(props.name, parsed.data)
          .then(setAnswer)
          .finally(() => setBusy(false));
      }}
    >
      <label className="jp-Mlk-field">
        <span>
          {trans.__('Rows (JSON), a V1 {"instances"} or a V2 {"inputs"} body')}
        </span>
        <textarea
          className="jp-mod-styled jp-Mlk-tryItInput"
          name={`try-${props.name}`}
          rows={3}
          spellCheck={false}
          value={text}
          onChange={e => setText(e.target.value)}
        />
      </label>
      {problem && (
        <div className="jp-Mlk-formErrors" role="alert">
          {problem}
        </div>
      )}
      <div className="jp-Mlk-formActions">
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept jp-Mlk-sendTry"
          disabled={busy}
        >
          {busy ? trans.__('Sending…') : trans.__('Send')}
        </button>
      </div>
      {answer !== null && (
        <pre className="jp-Mlk-log jp-Mlk-tryItAnswer">
          {JSON.stringify(answer, null, 2)}
        </pre>
      )}
    </form>
  );
}

function statusLabel(status: string, trans: TranslationBundle): string {
  switch (status) {
    case 'RUNNING':
      return trans.__('Running');
    case 'PENDING':
      return trans.__('Pending');
    case 'FAILED':
      return trans.__('Failed');
    case 'STOPPED':
      return trans.__('Stopped');
    default:
      return status;
  }
}
