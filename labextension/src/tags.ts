/**
 * The cell tag grammar (README "Tagging a notebook"), as pure functions over a
 * cell's tag list: read what the tags say, and change one aspect at a time
 * while keeping every other tag, Kale spellings and unknown tags included.
 */

/** The roles a cell can have besides holding step code. */
export type CellRole = 'imports' | 'functions' | 'parameters' | 'metrics';

const ROLE_ALIASES: { [tag: string]: CellRole } = {
  imports: 'imports',
  functions: 'functions',
  parameters: 'parameters',
  'pipeline-parameters': 'parameters',
  metrics: 'metrics',
  'pipeline-metrics': 'metrics'
};

const STEP_PREFIXES = ['step:', 'block:'];
const CONDITION = /^([A-Za-z_][A-Za-z0-9_]*)(==|!=|>=|<=|>|<)(\S+)$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** What the tags of one cell say. */
export interface ICellTags {
  role: CellRole | null;
  step: string | null;
  skip: boolean;
  prev: string[];
  condition: string | null;
  limits: { [resource: string]: string };
  gpus: number | null;
  image: string | null;
  cacheOff: boolean;
  /** Tags this grammar does not change (node:, toleration:, unknown ones). */
  other: string[];
}

/** Reads the tags of one cell. */
export function parseTags(tags: readonly string[]): ICellTags {
  const out: ICellTags = {
    role: null,
    step: null,
    skip: false,
    prev: [],
    condition: null,
    limits: {},
    gpus: null,
    image: null,
    cacheOff: false,
    other: []
  };
  for (const tag of tags) {
    const [prefix, value] = splitTag(tag);
    if (tag in ROLE_ALIASES) {
      out.role = ROLE_ALIASES[tag];
    } else if (tag === 'skip') {
      out.skip = true;
    } else if (isStepTag(tag)) {
      out.step = value;
    } else if (prefix === 'prev' && value) {
      out.prev.push(value);
    } else if (prefix === 'if' && value) {
      out.condition = value;
    } else if (prefix === 'limit' && value) {
      const cut = value.lastIndexOf(':');
      if (cut > 0) {
        out.limits[value.slice(0, cut)] = value.slice(cut + 1);
      } else {
        out.other.push(tag);
      }
    } else if (prefix === 'gpu' && /^\d+$/.test(value)) {
      out.gpus = parseInt(value, 10);
    } else if (prefix === 'image' && value) {
      out.image = value;
    } else if (prefix === 'cache') {
      out.cacheOff = value === 'off' || value === 'disabled';
    } else {
      out.other.push(tag);
    }
  }
  return out;
}

/**
 * Gives the cell the step `name` (a `step:` tag), or none (`null`: the cell
 * continues the step before it). A role tag is removed: a cell that starts a
 * step holds step code.
 */
export function setStep(
  tags: readonly string[],
  name: string | null
): string[] {
  const kept = tags.filter(t => !isStepTag(t));
  if (name === null) {
    return kept;
  }
  return [`step:${name.trim()}`, ...kept.filter(t => !(t in ROLE_ALIASES))];
}

/**
 * Gives the cell a role (imports, functions, parameters, metrics) or none.
 * A role cell starts no step, so its step tag and step options go.
 */
export function setRole(
  tags: readonly string[],
  role: CellRole | null
): string[] {
  const kept = tags.filter(t => !(t in ROLE_ALIASES));
  if (role === null) {
    return kept;
  }
  return [role, ...kept.filter(t => !isStepTag(t) && !isStepOption(t))];
}

/** Adds or removes the `skip` tag. */
export function setSkip(tags: readonly string[], skip: boolean): string[] {
  const kept = tags.filter(t => t !== 'skip');
  return skip ? [...kept, 'skip'] : kept;
}

/** Flips the `skip` tag. */
export function toggleSkip(tags: readonly string[]): string[] {
  return setSkip(tags, !tags.includes('skip'));
}

/** Replaces the `prev:` edges with `names` (in that order, no repeats). */
export function setPrev(
  tags: readonly string[],
  names: readonly string[]
): string[] {
  const kept = tags.filter(t => splitTag(t)[0] !== 'prev');
  const unique = Array.from(new Set(names.map(n => n.trim()).filter(Boolean)));
  return [...kept, ...unique.map(n => `prev:${n}`)];
}

/** Sets the `if:` condition; `null` or blank removes it. */
export function setCondition(
  tags: readonly string[],
  condition: string | null
): string[] {
  return replaceOption(tags, 'if', blankToNull(condition));
}

/** Sets `limit:RESOURCE:AMOUNT`; `null` or blank removes that resource's limit. */
export function setLimit(
  tags: readonly string[],
  resource: string,
  amount: string | null
): string[] {
  const kept = tags.filter(t => !t.startsWith(`limit:${resource}:`));
  const value = blankToNull(amount);
  return value === null ? kept : [...kept, `limit:${resource}:${value}`];
}

/** Sets `gpu:N`; `null` or 0 removes it. */
export function setGpus(
  tags: readonly string[],
  gpus: number | null
): string[] {
  return replaceOption(tags, 'gpu', gpus ? String(gpus) : null);
}

/** Sets `image:IMAGE`; `null` or blank removes it. */
export function setImage(
  tags: readonly string[],
  image: string | null
): string[] {
  return replaceOption(tags, 'image', blankToNull(image));
}

/** Adds `cache:off`, or removes every cache tag (caching is the default). */
export function setCacheOff(tags: readonly string[], off: boolean): string[] {
  return replaceOption(tags, 'cache', off ? 'off' : null);
}

/** The DNS-1123 form of a step name, as the server sanitises it. */
export function sanitizeName(name: string): string {
  const out = name
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '');
  return out.slice(0, 63).replace(/-+$/, '');
}

/**
 * Why `name` cannot be a new step name, or `null` when it can. `existing` are
 * the step names the notebook has; a new step must not clash with them once
 * sanitised.
 */
export function stepNameProblem(
  name: string,
  existing: readonly string[]
): string | null {
  const trimmed = name.trim();
  if (!trimmed) {
    return 'Give the step a name.';
  }
  if (/[\s:]/.test(trimmed)) {
    return 'A step name has no spaces or colons.';
  }
  if (!sanitizeName(trimmed)) {
    return 'Use letters, digits, - or _.';
  }
  const clash = existing.find(s => sanitizeName(s) === sanitizeName(trimmed));
  if (clash !== undefined) {
    return `Step '${clash}' already exists: choose it in the list instead.`;
  }
  return null;
}

/** Why `condition` is not an `if:` condition, or `null` when it is. */
export function conditionProblem(condition: string): string | null {
  if (!condition.trim()) {
    return null;
  }
  if (!CONDITION.test(condition)) {
    return 'Write NAME OP VALUE with no spaces, e.g. accuracy>=0.9.';
  }
  return null;
}

/** Why `amount` is not a Kubernetes quantity, or `null` when it is. */
export function quantityProblem(amount: string): string | null {
  if (!amount.trim() || QUANTITY.test(amount.trim())) {
    return null;
  }
  return 'Not a Kubernetes quantity (e.g. 500m, 2, 4Gi).';
}

/** Whether the tag starts a step (`step:NAME` or Kale's `block:NAME`). */
export function isStepTag(tag: string): boolean {
  return STEP_PREFIXES.some(p => tag.startsWith(p));
}

function isStepOption(tag: string): boolean {
  const prefix = splitTag(tag)[0];
  return ['prev', 'if', 'limit', 'gpu', 'image', 'cache'].includes(prefix);
}

function splitTag(tag: string): [string, string] {
  const cut = tag.indexOf(':');
  return cut < 0 ? [tag, ''] : [tag.slice(0, cut), tag.slice(cut + 1)];
}

function replaceOption(
  tags: readonly string[],
  prefix: string,
  value: string | null
): string[] {
  const kept = tags.filter(t => splitTag(t)[0] !== prefix || !t.includes(':'));
  return value === null ? kept : [...kept, `${prefix}:${value}`];
}

function blankToNull(value: string | null): string | null {
  const trimmed = value === null ? '' : value.trim();
  return trimmed ? trimmed : null;
}
