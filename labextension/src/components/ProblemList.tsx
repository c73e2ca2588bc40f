/** The problems the analysis found; each one jumps to its cell. */
import { TranslationBundle } from '@jupyterlab/translation';
import { caretRightIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { IProblem } from '../tokens';

export function ProblemList(props: {
  errors: IProblem[];
  warnings: IProblem[];
  trans: TranslationBundle;
  onReveal: (cellIndex: number) => void;
}): JSX.Element | null {
  const { trans } = props;
  const problems = [...props.errors, ...props.warnings];
  if (problems.length === 0) {
    return null;
  }
  return (
    <ul className="jp-Mlk-problems" aria-label={trans.__('Problems')}>
      {problems.map((problem, i) => {
        const cell = problem.cell_index;
        const canJump = cell !== null && cell !== undefined;
        return (
          <li
            key={i}
            className={`jp-Mlk-problem jp-Mlk-problem-${problem.severity}`}
            title={canJump ? trans.__('Go to cell %1', cell) : undefined}
            onClick={canJump ? () => props.onReveal(cell) : undefined}
          >
            <span className="jp-Mlk-problemIcon" aria-hidden="true">
              {problem.severity === 'error' ? '⨯' : '!'}
            </span>
            <span className="jp-Mlk-problemMessage">{problem.message}</span>
            {canJump && (
              <span className="jp-Mlk-problemCell">
                {trans.__('cell %1', cell)}
                <caretRightIcon.react tag="span" />
              </span>
            )}
          </li>
        );
      })}
    </ul>
  );
}
