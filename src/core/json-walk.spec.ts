import { exceedsDepth, findKey } from './json-walk';

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
