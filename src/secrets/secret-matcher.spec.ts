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
