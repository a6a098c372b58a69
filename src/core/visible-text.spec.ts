import { createHash } from 'node:crypto';
import { runInNewContext } from 'node:vm';
import { HiddenCharacterScan, hiddenCharactersOf, jsonWithVisibleEscapes, showHidden, showHiddenBrowserScript, showHiddenIn } from './visible-text';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('visible text: what an approver reads is what runs', () => {
  const hidden = [
    '\u202A',
    '\u202E',
    '\u2066',
    '\u2069',
    '\u200B',
    '\u200F',
    '\u2060',
    '\u2064',
    '\uFEFF',
    '\u2028',
    '\u2029',
    '\u00AD',
    '\u061C',
    '\u0007',
    '\u001B',
    '\u0085',
    '\uFE0F',
    '\u{E0041}',
    '\u{E0100}',
    '\u3164',
  ];

  it('shows every bidirectional, zero-width, format and control character as <U+XXXX>', () => {
    for (const character of hidden) expect(showHidden(`a${character}b`)).toMatch(/^a<U\+[0-9A-F]{4,5}>b$/);
    expect(showHidden('a\u202Eb')).toBe('a<U+202E>b');
    expect(showHidden('\u{E0041}')).toBe('<U+E0041>');
  });

  it('leaves ordinary text, tabs, line feeds and CRLF line ends alone, but not a lone carriage return', () => {
    const plain = 'naïve café — 東京 ✓\tx\r\ny\n';
    expect(showHidden(plain)).toBe(plain);
    expect(showHidden('safe\rdanger')).toBe('safe<U+000D>danger');
  });

  it('writes the exact JSON with hidden characters as \\u escapes: the same value, the same arguments_sha256', () => {
    const args = { path: 'a\u202Eb.txt', content: 'x\u2066y\u{E0041}\r\nz', n: 1 };
    const json = jsonWithVisibleEscapes(args);
    expect(json).toBe('{"path":"a\\u202eb.txt","content":"x\\u2066y\\udb40\\udc41\\r\\nz","n":1}');
    expect(showHidden(json)).toBe(json);
    expect(JSON.parse(json)).toEqual(args);
    expect(sha256(JSON.stringify(JSON.parse(json)))).toBe(sha256(JSON.stringify(args)));
  });

  it('names each character with its argument path and line, keys included', () => {
    expect(hiddenCharactersOf({ content: 'line one\nif (isAdmin) \u202E\u202E {\n}\n', options: { ['ke\u200By']: ['\u2066'] } })).toEqual([
      { character: 'U+202E', name: 'right-to-left override', where: 'argument content, line 2', count: 2 },
      { character: 'U+200B', name: 'zero width space', where: 'argument options.ke<U+200B>y (a key)', count: 1 },
      { character: 'U+2066', name: 'left-to-right isolate', where: 'argument options.ke<U+200B>y[0]', count: 1 },
    ]);
    expect(hiddenCharactersOf({ path: 'plain.txt' })).toEqual([]);
  });

  it('keeps a readable answer for a text full of them', () => {
    const scan = new HiddenCharacterScan().text('file', Array.from({ length: 50 }, () => '\u200B').join('\n'));
    expect(scan.findings).toHaveLength(20);
    expect(scan.omitted).toBe(30);
    expect(scan.describe()).toMatch(/U\+200B \(zero width space\) in file, line 1; .*; and 30 more\. /);
  });

  it('makes a display copy of a JSON value without touching the original', () => {
    const value = { ['__proto__']: 'x\u202E', list: ['\u2066'] };
    const shown = showHiddenIn(JSON.parse(JSON.stringify(value)));
    expect(JSON.stringify(shown)).toBe('{"__proto__":"x<U+202E>","list":["<U+2066>"]}');
  });

  it('gives the console the same rule', () => {
    const window: { showHidden?: (text: string) => string } = {};
    runInNewContext(showHiddenBrowserScript(), { window });
    const sample = `${hidden.join('|')}|plain\r\n|\r|é`;
    expect(window.showHidden!(sample)).toBe(showHidden(sample));
  });
});
