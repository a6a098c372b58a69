import { SecretMatcher } from './secret-matcher';

const mark = (s: string) => `[${s.length}]`;

describe('SecretMatcher', () => {
  it('replaces every occurrence, anywhere, longest first where two start at one place', () => {
    const m = new SecretMatcher(['token-123456', 'token-123456789', 'other-secret']);
    expect(m.replaceIn('a token-123456789 b token-123456 c other-secretother-secret', mark)).toBe('a [15] b [12] c [12][12]');
    expect(m.replaceIn('token-123456', mark)).toBe('[12]');
    expect(m.replaceIn('nothing here, token-12345 is short of one', mark)).toBe('nothing here, token-12345 is short of one');
  });

  it('ignores values under 6 characters and texts shorter than that', () => {
    const m = new SecretMatcher(['abc', 'abcdef']);
    expect(m.replaceIn('abc abcdef abcde', mark)).toBe('abc [6] abcde');
    expect(m.replaceIn('abc', mark)).toBe('abc');
  });

  it('finds any of 10,000 values as the same scan would find one, and agrees with a naive search', () => {
    const values = Array.from({ length: 10_000 }, (_, i) => `agent-key-${i}-${(i * 7919).toString(36)}`);
    const m = new SecretMatcher(values);
    const text = `start ${values[0]} mid ${values[9_999]} ${values[4_242]}end é😀 ${values[4_242]}`;
    expect(m.replaceIn(text, () => '#')).toBe('start # mid # #end é😀 #');
    for (const v of values.slice(0, 200)) expect(m.replaceIn(`x${v}x`, () => '#')).toBe('x#x');
  });
});

describe('SecretMatcher: encoded forms', () => {
  const TOKEN = 'ghp_Tok/en+Value=0123:4567~89ab';
  const m = new SecretMatcher([TOKEN]);
  const scrub = (text: string) => m.replaceIn(text, (secret) => `<${secret === TOKEN ? 'token' : '?'}>`);
  const b64 = (text: string, enc: BufferEncoding = 'base64') => Buffer.from(text).toString(enc);

  it.each([
    ['as is', TOKEN],
    ['upper case', TOKEN.toUpperCase()],
    ['lower case', TOKEN.toLowerCase()],
    ['hex', b64(TOKEN, 'hex')],
    ['upper-case hex', b64(TOKEN, 'hex').toUpperCase()],
    ['percent-encoded', encodeURIComponent(TOKEN)],
    ['form-encoded', new URLSearchParams({ a: TOKEN }).toString().slice(2)],
    ['every byte percent-encoded', b64(TOKEN, 'hex').replace(/../g, '%$&')],
  ])('finds it %s', (_name, form) => {
    expect(scrub(`[${form}]`)).toBe('[<token>]');
  });

  it.each([
    ['base64', 'base64'],
    ['base64url', 'base64url'],
  ] as const)('finds its %s at every alignment inside a longer encoded text, leaving at most a character at either end', (_name, enc) => {
    for (const prefix of ['', 'B', 'Be', 'Bearer ', 'user:']) {
      const encoded = b64(`${prefix}${TOKEN}`, enc);
      const out = scrub(encoded);
      expect(out).toContain('<token>');
      const [before, after] = out.split('<token>');
      expect(before.length).toBeLessThanOrEqual(Math.ceil((prefix.length * 8) / 6) + 1);
      expect(after.replace(/=+$/, '').length).toBeLessThanOrEqual(1);
    }
  });

  it('reports the secret itself whichever form was found, so every form gets the same marker', () => {
    const seen: string[] = [];
    m.replaceIn(`${TOKEN} ${b64(TOKEN)} ${b64(TOKEN, 'hex')}`, (secret) => (seen.push(secret), '#'));
    expect(seen).toEqual([TOKEN, TOKEN, TOKEN]);
  });

  it('computes the forms once, when a value is added, and forgets them when it is deleted', () => {
    const own = new SecretMatcher();
    own.add('rotating-secret-1');
    expect(own.replaceIn(b64('rotating-secret-1'), () => '#')).toMatch(/^#/);
    own.delete('rotating-secret-1');
    expect(own.replaceIn(`rotating-secret-1 ${b64('rotating-secret-1')}`, () => '#')).not.toContain('#');
  });

  // Generous bounds (about 0.4 s and 20 ms outside Jest): they catch a quadratic build or scan, not jitter.
  it('stays fast with 10,000 agent keys: forms built once, and a 1 MB text scanned in one pass', () => {
    const values = Array.from({ length: 10_000 }, (_, i) => `agent-key-${i}-${(i * 7919).toString(36)}-0123456789`);
    let start = Date.now();
    const many = new SecretMatcher(values);
    expect(Date.now() - start).toBeLessThan(1500);
    const text = 'lorem ipsum dolor sit amet '.repeat(40_000) + b64(values[5_000]);
    start = Date.now();
    const tail = many.replaceIn(text, () => '#').slice(-8);
    expect(tail).toMatch(/#[A-Za-z0-9+/]?=*$/);
    expect(Date.now() - start).toBeLessThan(1500);
  });

  it('leaves ordinary text alone', () => {
    const text = 'The quick brown fox, 0123456789abcdef, SGVsbG8gd29ybGQ=, %41%42 and ghp_other';
    expect(scrub(text)).toBe(text);
  });
});
