/**
 * The sweeps of the workspace, newest first, whoever started them; a button
 * opens the form for the current notebook, a click on a sweep its view.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { baseName, formatTime, formatValue } from '../format';
import { SweepsModel } from '../sweeps';
import { IMlkModel, ISweep } from '../tokens';
import { StateBadge } from './StateBadge';
import { useSignals } from './useSignal';

export function SweepList(props: {
  sweeps: SweepsModel;
  model: IMlkModel;
  trans: TranslationBundle;
  onNew: () => void;
  onOpen: (sweepId: string) => void;
}): JSX.Element {
  const { sweeps, model, trans } = props;
  useSignals(sweeps.sweepsChanged, model.notebookChanged);
  return (
    <div className="jp-Mlk-sweeps">
      <div className="jp-Mlk-sectionActions">
        <button
          className="jp-mod-styled jp-Mlk-newSweep"
          disabled={!model.notebook}
          title={
            model.notebook
              ? trans.__('Search the parameters of %1', model.notebook.path)
              : trans.__('Open a notebook to sweep over its parameters')
          }
          onClick={props.onNew}
        >
          {trans.__('New sweep…')}
        </button>
      </div>
      {sweeps.sweeps.length === 0 && (
        <div className="jp-Mlk-empty">{trans.__('No sweeps yet.')}</div>
      )}
      <ul className="jp-Mlk-runList" aria-label={trans.__('Sweeps')}>
        {sweeps.sweeps.map(sweep => (
          <SweepRow
            key={sweep.id}
            sweep={sweep}
            trans={trans}
            onOpen={() => props.onOpen(sweep.id)}
          />
        ))}
      </ul>
    </div>
  );
}

function SweepRow(props: {
  sweep: ISweep;
  trans: TranslationBundle;
  onOpen: () => void;
}): JSX.Element {
  const { sweep, trans } = props;
  const spec = sweep.spec;
  return (
    <li
      className="jp-Mlk-runRow jp-Mlk-sweepRow"
      data-sweep-id={sweep.id}
      title={trans.__('Open sweep %1', sweep.id)}
      onClick={props.onOpen}
    >
      <div className="jp-Mlk-runLine">
        <StateBadge state={sweep.state} trans={trans} />
        <span className="jp-Mlk-runTime">{formatTime(sweep.created)}</span>
        <span className="jp-Mlk-runDuration">{baseName(sweep.notebook)}</span>
      </div>
      <div className="jp-Mlk-runDetail">
        <span className="jp-Mlk-runKey">{spec.goal}</span> {spec.objective} ·{' '}
        {spec.algorithm} · {spec.parameters.map(p => p.name).join(', ')}
      </div>
      {sweep.best && (
        <div className="jp-Mlk-runDetail jp-Mlk-runMetrics">
          <span className="jp-Mlk-runKey">{trans.__('best')}</span>{' '}
          {trans.__(
            'trial %1: %2',
            sweep.best.number,
            formatValue(sweep.best.objective)
          )}
        </div>
      )}
    </li>
  );
}
