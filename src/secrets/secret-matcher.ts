/** Shorter values are too common to replace blindly. */
export const MIN_SECRET_LENGTH = 6;

const BASE = 31;
// BASE^(MIN_SECRET_LENGTH - 1) mod 2^32: what the character leaving the window weighs.
const OUTGOING_WEIGHT = Array.from({ length: MIN_SECRET_LENGTH - 1 }).reduce<number>((w) => Math.imul(w, BASE), 1);

function windowHash(text: string, at: number): number {
  let h = 0;
  for (let i = at; i < at + MIN_SECRET_LENGTH; i++) h = (Math.imul(h, BASE) + text.charCodeAt(i)) | 0;
  return h;
}

/**
 * Finds known secret values in a text in one pass, however many there are (every HMAC agent's key
 * is one: 10,000 agents must not mean 10,000 scans of every string). Multi-pattern Rabin–Karp: a
 * rolling hash of the next MIN_SECRET_LENGTH characters picks the candidates that start there,
 * longest first; a candidate counts only if the text really holds it. Linear in the text.
 */
export class SecretMatcher {
  private readonly byPrefix = new Map<number, string[]>();

  constructor(values: Iterable<string>) {
    const longestFirst = [...new Set(values)].filter((v) => v.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
    for (const value of longestFirst) {
      const h = windowHash(value, 0);
      const bucket = this.byPrefix.get(h);
      if (bucket) bucket.push(value);
      else this.byPrefix.set(h, [value]);
    }
  }

  /** `text` with every known value replaced by `replacement(value)`, leftmost first, longest at a position. */
  replaceIn(text: string, replacement: (secret: string) => string): string {
    if (this.byPrefix.size === 0 || text.length < MIN_SECRET_LENGTH) return text;
    let out = '';
    let copiedUpTo = 0;
    let h = windowHash(text, 0);
    for (let i = 0; i + MIN_SECRET_LENGTH <= text.length; ) {
      const found = this.byPrefix.get(h)?.find((secret) => text.startsWith(secret, i));
      if (found) {
        out += text.slice(copiedUpTo, i) + replacement(found);
        i += found.length;
        copiedUpTo = i;
        if (i + MIN_SECRET_LENGTH <= text.length) h = windowHash(text, i);
        continue;
      }
      if (i + MIN_SECRET_LENGTH < text.length) {
        h = (Math.imul(h - Math.imul(text.charCodeAt(i), OUTGOING_WEIGHT), BASE) + text.charCodeAt(i + MIN_SECRET_LENGTH)) | 0;
      }
      i += 1;
    }
    return copiedUpTo === 0 ? text : out + text.slice(copiedUpTo);
  }
}
