import { YAMLParseError } from 'yaml';
import { parseYamlUniqueKeys } from './yaml-unique';

const parse = (text: string) => parseYamlUniqueKeys(text, 100);

function problemOf(text: string): { line?: number; message: string } {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof YAMLParseError) return { line: err.linePos?.[0].line, message: err.message };
    throw err;
  }
  return { message: 'no error' };
}

describe('the config file as YAML', () => {
  it('reads YAML 1.2 core scalars, block and flow collections, and an empty file as null', () => {
    expect(parse('a: [1, 0x1F, 1.5, true, null, ~, "7", x y]\nb:\n  c: { d: e }\n  f: |\n    text\n')).toEqual({
      a: [1, 31, 1.5, true, null, null, '7', 'x y'],
      b: { c: { d: 'e' }, f: 'text\n' },
    });
    expect(parse('')).toBeNull();
    expect(parse('# only a comment\n')).toBeNull();
  });

  it.each([
    ['a key given twice in a block mapping', 'a: 1\ntools:\n  t1: {}\n  t2: {}\n  t1: {}\n', 5, 'duplicate key "t1" (column 3)'],
    ['a key given twice in a flow mapping', 'x: { kind: a, roles: [r], kind: b }\n', 1, 'duplicate key "kind" (column 27)'],
    ['the same key quoted and plain', 'a: 1\n"a": 2\n', 2, 'duplicate key "a" (column 1)'],
    ['a number key and its string', '1: a\n"1": b\n', 2, 'duplicate key "1" (column 1)'],
    ['a single-quoted key', "'t 1': a\n't 1': b\n", 2, "duplicate key 't 1' (column 1)"],
  ])('refuses %s, naming the key and its line', (_label, text, line, message) => {
    expect(problemOf(text)).toEqual({ line, message });
  });

  it.each([
    ['an unclosed flow sequence', 'x: [1, 2\n', 2, 'unexpected end of the stream within a flow collection (column 1)'],
    ['an unknown tag', 'a: !foo x\n', 1, 'unknown tag !<!foo> (column 10)'],
    ['a binary tag', 'a: !!binary aGk=\n', 1, 'unknown tag !<tag:yaml.org,2002:binary> (column 17)'],
    ['an alias without its anchor', 'a: &a [1]\nb: *c\n', 2, 'unidentified alias "c" (column 6)'],
  ])('refuses %s with its line', (_label, text, line, message) => {
    expect(problemOf(text)).toEqual({ line, message });
  });

  it('refuses a second document', () => {
    expect(problemOf('a: 1\n---\nb: 2\n')).toEqual({ line: undefined, message: 'expected a single document in the stream, but found more' });
  });

  it('takes `<<` as a plain key (no merge keys in YAML 1.2)', () => {
    expect(parse('base: &b { x: 1 }\nc: { <<: *b, y: 2 }\n')).toEqual({ base: { x: 1 }, c: { '<<': { x: 1 }, y: 2 } });
  });

  it('keeps a `__proto__` key as data, never as a prototype', () => {
    const doc = parse('__proto__: { polluted: true }\n') as Record<string, unknown>;
    expect(Object.getPrototypeOf(doc)).toBe(Object.prototype);
    expect(Object.keys(doc)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  describe('aliases', () => {
    const uses = (count: number) => `s: &s { type: object }\nt:\n${Array.from({ length: count }, (_, i) => `  t${i}: *s\n`).join('')}`;

    it('allows up to 100 uses of anchors', () => {
      const doc = parse(uses(100)) as { t: Record<string, unknown> };
      expect(Object.keys(doc.t)).toHaveLength(100);
      expect(doc.t.t99).toEqual({ type: 'object' });
    });

    it('refuses a 101st use', () => {
      expect(problemOf(uses(101))).toEqual({
        line: undefined,
        message: 'more than 100 alias uses (counted as expanded): refused as a resource exhaustion attack',
      });
    });

    it('counts nested aliases as often as they expand (a billion laughs), and stops early', () => {
      const level = (name: string, of: string) => `${name}: &${name} [${Array(10).fill(`*${of}`).join(', ')}]\n`;
      const laughs = `a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n${level('b', 'a')}${level('c', 'b')}${level('d', 'c')}${level('e', 'd')}${level('f', 'e')}${level('g', 'f')}${level('h', 'g')}${level('i', 'h')}`;
      const started = performance.now();
      expect(problemOf(laughs).message).toMatch(/^more than 100 alias uses/);
      expect(performance.now() - started).toBeLessThan(1000);
    });

    it('refuses an alias inside the node it names', () => {
      expect(problemOf('a: &x { b: [1, *x] }\n')).toEqual({ line: undefined, message: 'an alias refers to a node that contains it' });
    });
  });
});
