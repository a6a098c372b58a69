import { exceedsDepth, findKey, mapJson } from './json-walk';

describe('bounded JSON walks', () => {
  // `depth` nested arrays, the innermost holding a scalar.
  const nest = (depth: number): unknown => {
    let v: unknown = [1];
    for (let i = 1; i < depth; i++) v = [v];
    return v;
  };

  it('counts container levels, the value itself as level 1', () => {
    expect(exceedsDepth(nest(64), 64)).toBe(false);
    expect(exceedsDepth(nest(65), 64)).toBe(true);
    expect(exceedsDepth({ a: { b: {} } }, 3)).toBe(false);
    expect(exceedsDepth({ a: { b: {} } }, 2)).toBe(true);
    expect(exceedsDepth('scalar', 1)).toBe(false);
  });

  it('handles a 100,000-deep array without recursion', () => {
    expect(exceedsDepth(nest(100_000), 64)).toBe(true);
    expect(findKey(nest(100_000), () => false)).toBeUndefined();
  });

  it('finds a key and reports its path', () => {
    expect(findKey({ a: [{ b: 1 }, { c: { d: 1 } }] }, (k) => k === 'd')).toBe('a[1].c.d');
    expect(findKey({ a: ['d'] }, (k) => k === 'd')).toBeUndefined();
  });
});

describe('mapJson', () => {
  const upper = { string: (text: string) => text.toUpperCase() };

  it('maps strings and keys, keeps other values, and copies arrays and objects', () => {
    const input = { a: ['x', 1, null, true], b: { c: 'y' } };
    const out = mapJson(input, { ...upper, key: (key) => `k_${key}` });
    expect(out).toEqual({ k_a: ['X', 1, null, true], k_b: { k_c: 'Y' } });
    expect(input).toEqual({ a: ['x', 1, null, true], b: { c: 'y' } });
  });

  it('keeps a "__proto__" key as a plain key', () => {
    const out = mapJson(JSON.parse('{"__proto__": {"polluted": "yes"}, "a": "b"}') as object, upper);
    expect(Object.keys(out)).toEqual(['__proto__', 'a']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('puts a member value in place of walking it', () => {
    expect(mapJson({ token: { deep: 'x' }, other: 'y' }, { ...upper, member: (key) => (key === 'token' ? '[hidden]' : undefined) })).toEqual({
      token: '[hidden]',
      other: 'Y',
    });
  });

  it('replaces what is nested maxDepth levels down, or leaves it as it is', () => {
    const value = { a: { b: { c: 'x' } } };
    expect(mapJson(value, { ...upper, maxDepth: 2, tooDeep: () => 'deep' })).toEqual({ a: { b: 'deep' } });
    expect(mapJson(value, { ...upper, maxDepth: 2 }).a.b).toBe(value.a.b);
    expect(mapJson('x', { ...upper, maxDepth: 0, tooDeep: () => 'deep' })).toBe('X');
  });

  it('keeps class instances when asked, and copies their own keys otherwise', () => {
    class Box {
      constructor(readonly inside: string) {}
    }
    const box = new Box('x');
    expect(mapJson({ box }, { ...upper, instances: 'keep' }).box).toBe(box);
    const copied = mapJson({ box }, upper).box;
    expect(copied).toEqual({ inside: 'X' });
    expect(Object.getPrototypeOf(copied)).toBe(Object.prototype);
  });
});
