/**
 * Plain formatting of durations, times and values for the panel; pure, so
 * the unit tests cover it.
 */
import { JSONValue } from './tokens';

/** `0.4 s`, `12 s`, `3 min 5 s`, `1 h 2 min`; an em dash when unknown. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '—';
  }
  if (seconds < 10) {
    return `${Math.max(seconds, 0).toFixed(1)} s`;
  }
  if (seconds < 60) {
    return `${Math.round(seconds)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    const rest = Math.round(seconds - minutes * 60);
    return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  const rest = minutes - hours * 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

/**
 * How long a run or step took, or has been going on for when it has not
 * finished (`now` in epoch seconds).
 */
export function elapsed(
  item: {
    started?: number | null;
    finished?: number | null;
    duration?: number | null;
  },
  now: number
): number | null {
  if (item.duration !== null && item.duration !== undefined) {
    return item.duration;
  }
  if (item.started) {
    return (item.finished ?? now) - item.started;
  }
  return null;
}

/** A short local date and time for an epoch in seconds. */
export function formatTime(epochSeconds: number | null | undefined): string {
  if (!epochSeconds) {
    return '—';
  }
  const date = new Date(epochSeconds * 1000);
  const sameDay = new Date().toDateString() === date.toDateString();
  const time = date.toLocaleTimeString(undefined, {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
  return sameDay
    ? time
    : `${date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${time}`;
}

/** A value as a short text: numbers rounded to 4 significant digits. */
export function formatValue(value: JSONValue | undefined): string {
  if (typeof value === 'number') {
    return Number.isInteger(value)
      ? String(value)
      : String(+value.toPrecision(4));
  }
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value ?? null);
}

/** `name=value` pairs, comma separated, for a table cell. */
export function formatPairs(values: { [name: string]: JSONValue }): string {
  return Object.keys(values)
    .sort()
    .map(name => `${name}=${formatValue(values[name])}`)
    .join(', ');
}

/**
 * A run id without its date (`r-20261203-170512-3fa9` is `170512-3fa9`):
 * the lists show the date beside it.
 */
export function shortId(runId: string): string {
  return runId.replace(/^r-\d{8}-/, '');
}

/** The file name of a path. */
export function baseName(path: string): string {
  const cut = path.lastIndexOf('/');
  return cut < 0 ? path : path.slice(cut + 1);
}
