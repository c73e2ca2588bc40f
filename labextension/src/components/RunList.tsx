/**
 * The run history of the workspace, newest first, whoever started the runs
 * (panel, CLI or magics); a click opens the run view.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useState } from 'react';

import {
  baseName,
  elapsed,
  formatPairs,
  formatTime,
  formatDuration,
  shortId
} from '../format';
import { IRun, IMlkModel } from '../tokens';
import { StateBadge } from './StateBadge';
import { useSignals } from './useSignal';

export function RunList(props: {
  model: IMlkModel;
  trans: TranslationBundle;
  onOpen: (runId: string) => void;
}): JSX.Element {
  const { model, trans } = props;
  useSignals(
    model.runsChanged,
    model.notebookChanged,
    model.serverStatusChanged
  );
  const [onlyThis, setOnlyThis] = useState(true);
  const path = model.notebook?.path ?? null;
  const runs = model.runs.filter(
    run => !onlyThis || path === null || run.notebook === path
  );
  if (model.serverMissing) {
    return <div className="jp-Mlk-empty">{trans.__('No run history.')}</div>;
  }
  const now = Date.now() / 1000;
  return (
    <div className="jp-Mlk-runs">
      {path !== null && (
        <label className="jp-Mlk-check jp-Mlk-runFilter">
          <input
            type="checkbox"
            checked={onlyThis}
            onChange={e => setOnlyThis(e.target.checked)}
          />
          {trans.__('Only runs of %1', baseName(path))}
        </label>
      )}
      {runs.length === 0 && (
        <div className="jp-Mlk-empty">{trans.__('No runs yet.')}</div>
      )}
      <ul className="jp-Mlk-runList" aria-label={trans.__('Runs')}>
        {runs.map(run => (
          <RunRow
            key={run.id}
            run={run}
            now={now}
            showNotebook={!onlyThis || path === null}
            trans={trans}
            onOpen={() => props.onOpen(run.id)}
          />
        ))}
      </ul>
    </div>
  );
}

function RunRow(props: {
  run: IRun;
  now: number;
  showNotebook: boolean;
  trans: TranslationBundle;
  onOpen: () => void;
}): JSX.Element {
  const { run, trans } = props;
  const params = formatPairs(run.params);
  const metrics = formatPairs(run.metrics);
  return (
    <li
      className="jp-Mlk-runRow"
      data-run-id={run.id}
      title={trans.__('Open run %1', run.id)}
      onClick={props.onOpen}
    >
      <div className="jp-Mlk-runLine">
        <StateBadge state={run.state} trans={trans} />
        <span className="jp-Mlk-runTime">{formatTime(run.created)}</span>
        <span className="jp-Mlk-runDuration">
          {formatDuration(elapsed(run, props.now))}
        </span>
      </div>
      <div className="jp-Mlk-runDetail">
        <span className="jp-Mlk-runKey">{trans.__('run')}</span>{' '}
        <span className="jp-Mlk-runId">{shortId(run.id)}</span>
      </div>
      {props.showNotebook && (
        <div className="jp-Mlk-runDetail">{run.notebook}</div>
      )}
      {params && (
        <div className="jp-Mlk-runDetail" title={params}>
          <span className="jp-Mlk-runKey">{trans.__('params')}</span> {params}
        </div>
      )}
      {metrics && (
        <div className="jp-Mlk-runDetail jp-Mlk-runMetrics" title={metrics}>
          <span className="jp-Mlk-runKey">{trans.__('metrics')}</span> {metrics}
        </div>
      )}
    </li>
  );
}
