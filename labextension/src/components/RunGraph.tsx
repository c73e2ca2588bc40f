/**
 * The step graph of a run as SVG, laid out by dagre, each node colored by
 * its step's state and showing its duration.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useMemo } from 'react';

import { elapsed, formatDuration } from '../format';
import { edgePath, layoutGraph } from '../layout';
import { IRunStep } from '../tokens';
import { stateLabel } from './StateBadge';

export function RunGraph(props: {
  steps: IRunStep[];
  edges: [string, string][];
  selected: string | null;
  now: number;
  trans: TranslationBundle;
  onSelect: (step: string) => void;
}): JSX.Element {
  const { steps, edges, trans } = props;
  const names = steps.map(s => s.name);
  const layout = useMemo(
    () => layoutGraph(names, edges),
    [names.join('\n'), JSON.stringify(edges)]
  );
  const byName = new Map(steps.map(s => [s.name, s]));
  return (
    <svg
      className="jp-Mlk-graph"
      width={layout.width}
      height={layout.height}
      viewBox={`0 0 ${layout.width} ${layout.height}`}
      role="img"
      aria-label={trans.__('Step graph')}
    >
      <defs>
        <marker
          id="jp-Mlk-arrow"
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="7"
          markerHeight="7"
          orient="auto-start-reverse"
        >
          <path d="M0,0 L10,5 L0,10 z" className="jp-Mlk-arrowHead" />
        </marker>
      </defs>
      {layout.edges.map(edge => (
        <path
          key={`${edge.from}->${edge.to}`}
          className="jp-Mlk-edge"
          d={edgePath(edge.points)}
          markerEnd="url(#jp-Mlk-arrow)"
        />
      ))}
      {layout.nodes.map(node => {
        const step = byName.get(node.name)!;
        const left = node.x - node.width / 2;
        const top = node.y - node.height / 2;
        const selected = props.selected === node.name;
        return (
          <g
            key={node.name}
            className={
              `jp-Mlk-node jp-Mlk-node-${step.state}` +
              (selected ? ' jp-Mlk-node-selected' : '')
            }
            data-step={node.name}
            data-state={step.state}
            transform={`translate(${left},${top})`}
            onClick={() => props.onSelect(node.name)}
          >
            <title>{`${node.name}: ${stateLabel(step.state, trans)}`}</title>
            <rect
              className="jp-Mlk-nodeBox"
              width={node.width}
              height={node.height}
              rx={6}
            />
            <rect
              className="jp-Mlk-nodeStripe"
              width={5}
              height={node.height}
              rx={2}
            />
            <text className="jp-Mlk-nodeName" x={16} y={19}>
              {node.name}
            </text>
            <text className="jp-Mlk-nodeState" x={16} y={36}>
              {stateLabel(step.state, trans)}
              {step.state === 'PENDING'
                ? ''
                : ` · ${formatDuration(elapsed(step, props.now))}`}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
