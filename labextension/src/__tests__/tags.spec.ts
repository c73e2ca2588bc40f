import {
  conditionProblem,
  parseTags,
  quantityProblem,
  sanitizeName,
  setCacheOff,
  setCondition,
  setGpus,
  setImage,
  setLimit,
  setPrev,
  setRole,
  setSkip,
  setStep,
  stepNameProblem,
  toggleSkip
} from '../tags';

describe('parseTags', () => {
  it('reads every part of the grammar, Kale spellings included', () => {
    const parsed = parseTags([
      'block:train',
      'prev:load',
      'prev:clean',
      'if:accuracy>=0.9',
      'limit:cpu:2',
      'limit:memory:4Gi',
      'gpu:1',
      'image:python:3.11',
      'cache:off',
      'node:pool=gpu',
      'my-own-tag'
    ]);
    expect(parsed).toEqual({
      role: null,
      step: 'train',
      skip: false,
      prev: ['load', 'clean'],
      condition: 'accuracy>=0.9',
      limits: { cpu: '2', memory: '4Gi' },
      gpus: 1,
      image: 'python:3.11',
      cacheOff: true,
      other: ['node:pool=gpu', 'my-own-tag']
    });
  });

  it('maps role aliases to one role', () => {
    expect(parseTags(['pipeline-parameters']).role).toBe('parameters');
    expect(parseTags(['pipeline-metrics']).role).toBe('metrics');
    expect(parseTags(['imports', 'skip'])).toMatchObject({
      role: 'imports',
      skip: true
    });
  });

  it('reads Kale 2 cache spellings', () => {
    expect(parseTags(['cache:disabled']).cacheOff).toBe(true);
    expect(parseTags(['cache:enabled']).cacheOff).toBe(false);
  });
});

describe('setStep', () => {
  it('puts the step tag first and keeps the other tags', () => {
    expect(setStep(['skip', 'custom'], 'train')).toEqual([
      'step:train',
      'skip',
      'custom'
    ]);
  });

  it('replaces a step or block tag instead of adding a second one', () => {
    expect(setStep(['block:old', 'prev:a'], 'new')).toEqual([
      'step:new',
      'prev:a'
    ]);
  });

  it('drops a role: a cell that starts a step holds step code', () => {
    expect(setStep(['functions'], 'train')).toEqual(['step:train']);
  });

  it('removes the step tag when the cell continues the step above', () => {
    expect(setStep(['step:train', 'skip'], null)).toEqual(['skip']);
  });

  it('trims the name', () => {
    expect(setStep([], '  eval ')).toEqual(['step:eval']);
  });
});

describe('setRole', () => {
  it('replaces the step tag and its options', () => {
    expect(
      setRole(['step:a', 'prev:b', 'if:x>1', 'limit:cpu:1', 'keep'], 'imports')
    ).toEqual(['imports', 'keep']);
  });

  it('replaces an alias of another role', () => {
    expect(setRole(['pipeline-parameters'], 'metrics')).toEqual(['metrics']);
  });

  it('keeps skip, which is not a role', () => {
    expect(setRole(['skip'], 'functions')).toEqual(['functions', 'skip']);
  });

  it('removes the role with null', () => {
    expect(setRole(['parameters', 'x'], null)).toEqual(['x']);
  });
});

describe('skip', () => {
  it('adds skip once', () => {
    expect(setSkip(['step:a', 'skip'], true)).toEqual(['step:a', 'skip']);
  });

  it('toggles skip on and off', () => {
    expect(toggleSkip(['step:a'])).toEqual(['step:a', 'skip']);
    expect(toggleSkip(['skip', 'step:a'])).toEqual(['step:a']);
  });
});

describe('step options', () => {
  it('replaces the prev edges, without repeats or blanks', () => {
    expect(setPrev(['step:c', 'prev:a'], ['b', 'b', ' ', 'a'])).toEqual([
      'step:c',
      'prev:b',
      'prev:a'
    ]);
    expect(setPrev(['step:c', 'prev:a'], [])).toEqual(['step:c']);
  });

  it('sets and clears the condition', () => {
    expect(setCondition(['step:d', 'if:a>1'], 'accuracy>=0.9')).toEqual([
      'step:d',
      'if:accuracy>=0.9'
    ]);
    expect(setCondition(['step:d', 'if:a>1'], '  ')).toEqual(['step:d']);
  });

  it('sets one limit without touching the others', () => {
    const tags = setLimit(['limit:cpu:1', 'limit:memory:1Gi'], 'cpu', '2');
    expect(tags).toEqual(['limit:memory:1Gi', 'limit:cpu:2']);
    expect(setLimit(tags, 'memory', null)).toEqual(['limit:cpu:2']);
  });

  it('does not mistake a longer resource name for a shorter one', () => {
    expect(setLimit(['limit:cpu-extra:1'], 'cpu', null)).toEqual([
      'limit:cpu-extra:1'
    ]);
  });

  it('sets gpus, image and cache', () => {
    let tags = setGpus(['step:t'], 2);
    tags = setImage(tags, 'pytorch/pytorch:2.3');
    tags = setCacheOff(tags, true);
    expect(tags).toEqual([
      'step:t',
      'gpu:2',
      'image:pytorch/pytorch:2.3',
      'cache:off'
    ]);
    expect(parseTags(tags)).toMatchObject({
      gpus: 2,
      image: 'pytorch/pytorch:2.3',
      cacheOff: true
    });
    tags = setGpus(setImage(setCacheOff(tags, false), ''), 0);
    expect(tags).toEqual(['step:t']);
  });

  it('round-trips through parseTags', () => {
    const tags = setCondition(
      setPrev(setStep([], 'deploy'), ['evaluate']),
      'a>=b'
    );
    expect(parseTags(tags)).toMatchObject({
      step: 'deploy',
      prev: ['evaluate'],
      condition: 'a>=b'
    });
  });
});

describe('validation', () => {
  it('sanitises names like the server', () => {
    expect(sanitizeName('Train_Model')).toBe('train-model');
    expect(sanitizeName('__x__')).toBe('x');
    expect(sanitizeName('a'.repeat(70))).toHaveLength(63);
  });

  it('refuses blank, spaced and clashing step names', () => {
    expect(stepNameProblem('', [])).toMatch(/name/);
    expect(stepNameProblem('two words', [])).toMatch(/spaces/);
    expect(stepNameProblem('___', [])).toMatch(/letters/);
    expect(stepNameProblem('Train', ['train'])).toMatch(/already exists/);
    expect(stepNameProblem('preprocess', ['train'])).toBeNull();
  });

  it('checks conditions and quantities', () => {
    expect(conditionProblem('accuracy>=0.9')).toBeNull();
    expect(conditionProblem('acc >= 0.9')).not.toBeNull();
    expect(conditionProblem('')).toBeNull();
    expect(quantityProblem('500m')).toBeNull();
    expect(quantityProblem('4Gi')).toBeNull();
    expect(quantityProblem('lots')).not.toBeNull();
  });
});
