import { changedParams, defaultText } from '../components/RunForm';
import {
  baseName,
  elapsed,
  formatDuration,
  formatPairs,
  formatValue,
  shortId
} from '../format';
import { edgePath, layoutGraph } from '../layout';
import { IGraphParameter } from '../tokens';

describe('format', () => {
  it('formats durations for people', () => {
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(0.42)).toBe('0.4 s');
    expect(formatDuration(12.4)).toBe('12 s');
    expect(formatDuration(185)).toBe('3 min 5 s');
    expect(formatDuration(3720)).toBe('1 h 2 min');
  });

  it('measures a running item up to now', () => {
    expect(elapsed({ started: 10, finished: null }, 15)).toBe(5);
    expect(elapsed({ started: 10, finished: 12, duration: 2 }, 99)).toBe(2);
    expect(elapsed({}, 99)).toBeNull();
  });

  it('formats values and pairs', () => {
    expect(formatValue(0.966666666)).toBe('0.9667');
    expect(formatValue(50)).toBe('50');
    expect(formatValue([1, 2])).toBe('[1,2]');
    expect(formatPairs({ b: 2, a: 'x' })).toBe('a=x, b=2');
    expect(shortId('r-20261203-170512-3fa9')).toBe('170512-3fa9');
    expect(shortId('custom')).toBe('custom');
    expect(baseName('a/b/iris.ipynb')).toBe('iris.ipynb');
  });
});

describe('run form', () => {
  const param = (
    name: string,
    type: string,
    value: IGraphParameter['default'],
    source: string
  ): IGraphParameter => ({
    name,
    type,
    default: value,
    source,
    annotation: null,
    choices: null,
    cell_index: 2
  });

  it('types defaults as the user would', () => {
    expect(defaultText(param('n', 'int', 50, '50'))).toBe('50');
    expect(defaultText(param('s', 'str', 'a "b"', '\'a "b"\''))).toBe('a "b"');
    expect(defaultText(param('f', 'bool', true, 'True'))).toBe('true');
    expect(defaultText(param('l', 'list', [1, 2], '[1, 2]'))).toBe('[1, 2]');
  });

  it('sends only the values that differ from the defaults', () => {
    const params = [param('n', 'int', 50, '50'), param('d', 'int', 3, '3')];
    expect(changedParams(params, { n: '50', d: '5' })).toEqual({ d: '5' });
  });
});

describe('layout', () => {
  it('places each step below the steps it needs', () => {
    const layout = layoutGraph(
      ['load', 'train', 'evaluate', 'deploy'],
      [
        ['load', 'train'],
        ['train', 'evaluate'],
        ['load', 'evaluate'],
        ['evaluate', 'deploy'],
        ['ghost', 'deploy']
      ]
    );
    const y = Object.fromEntries(layout.nodes.map(n => [n.name, n.y]));
    expect(y.load).toBeLessThan(y.train);
    expect(y.train).toBeLessThan(y.evaluate);
    expect(y.evaluate).toBeLessThan(y.deploy);
    expect(layout.edges).toHaveLength(4);
    expect(layout.width).toBeGreaterThan(0);
    for (const edge of layout.edges) {
      expect(edgePath(edge.points)).toMatch(/^M[\d.]+,[\d.]+/);
    }
  });
});
