/**
 * Places the steps of a run with dagre (layered layout, top to bottom), so
 * the run view only draws what the layout computed.
 */
import * as dagre from '@dagrejs/dagre';

export interface INodeBox {
  name: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface IEdgePath {
  from: string;
  to: string;
  points: { x: number; y: number }[];
}

export interface IGraphLayout {
  width: number;
  height: number;
  nodes: INodeBox[];
  edges: IEdgePath[];
}

/** Node height in pixels; the width grows with the step name. */
export const NODE_HEIGHT = 46;

/** The width a node needs for its name (monospace-ish estimate). */
export function nodeWidth(name: string): number {
  return Math.max(132, Math.min(260, 7.5 * name.length + 56));
}

/**
 * Lays out `names` with `edges` (pairs of names; ones naming an unknown step
 * are dropped).
 */
export function layoutGraph(
  names: readonly string[],
  edges: readonly (readonly [string, string])[],
  direction: 'TB' | 'LR' = 'TB'
): IGraphLayout {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({
    rankdir: direction,
    nodesep: 28,
    ranksep: 40,
    marginx: 12,
    marginy: 12
  });
  graph.setDefaultEdgeLabel(() => ({}));
  const known = new Set(names);
  for (const name of names) {
    graph.setNode(name, { width: nodeWidth(name), height: NODE_HEIGHT });
  }
  for (const [from, to] of edges) {
    if (known.has(from) && known.has(to) && from !== to) {
      graph.setEdge(from, to);
    }
  }
  dagre.layout(graph);
  const label = graph.graph();
  return {
    width: label.width ?? 0,
    height: label.height ?? 0,
    nodes: names.map(name => {
      const node = graph.node(name);
      return {
        name,
        x: node.x,
        y: node.y,
        width: node.width,
        height: node.height
      };
    }),
    edges: graph.edges().map(edge => ({
      from: edge.v,
      to: edge.w,
      points: graph.edge(edge).points.map(p => ({ x: p.x, y: p.y }))
    }))
  };
}

/** An SVG path through the layout's points, smoothed with quadratic curves. */
export function edgePath(points: { x: number; y: number }[]): string {
  if (points.length === 0) {
    return '';
  }
  const [first, ...rest] = points;
  if (rest.length < 2) {
    return [`M${first.x},${first.y}`, ...rest.map(p => `L${p.x},${p.y}`)].join(
      ' '
    );
  }
  let d = `M${first.x},${first.y}`;
  for (let i = 0; i < rest.length - 1; i++) {
    const control = rest[i];
    const next = rest[i + 1];
    const end =
      i === rest.length - 2
        ? next
        : { x: (control.x + next.x) / 2, y: (control.y + next.y) / 2 };
    d += ` Q${control.x},${control.y} ${end.x},${end.y}`;
  }
  return d;
}
