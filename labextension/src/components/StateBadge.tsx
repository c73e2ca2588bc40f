/** A run or step state as a small colored label. */
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

/** The label of each state, through the translator. */
export function stateLabel(state: string, trans: TranslationBundle): string {
  switch (state) {
    case 'PENDING':
      return trans.__('Pending');
    case 'RUNNING':
      return trans.__('Running');
    case 'SUCCEEDED':
      return trans.__('Succeeded');
    case 'FAILED':
      return trans.__('Failed');
    case 'CANCELLED':
      return trans.__('Cancelled');
    case 'CACHED':
      return trans.__('Cached');
    case 'SKIPPED':
      return trans.__('Skipped');
    default:
      return state;
  }
}

export function StateBadge(props: {
  state: string;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <span
      className={`jp-Mlk-state jp-Mlk-state-${props.state}`}
      data-state={props.state}
    >
      {stateLabel(props.state, props.trans)}
    </span>
  );
}
