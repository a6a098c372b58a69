/** Shorter values are too common to replace blindly. */
export const MIN_SECRET_LENGTH = 6;

const BASE = 31;
// BASE^(MIN_SECRET_LENGTH - 1) mod 2^32: what the character leaving the window weighs.
const OUTGOING_WEIGHT = Array.from({ length: MIN_SECRET_LENGTH - 1 }).reduce<number>((w) => Math.imul(w, BASE), 1);

/** ASCII letters compare without case (a token reflected upper-cased, hex in either case). */
const fold = (code: number) => (code >= 65 && code <= 90 ? code | 32 : code);
const foldText = (text: string) => text.replace(/[A-Z]+/g, (s) => s.toLowerCase());

function windowHash(text: string, at: number): number {
  let h = 0;
  for (let i = at; i < at + MIN_SECRET_LENGTH; i++) h = (Math.imul(h, BASE) + fold(text.charCodeAt(i))) | 0;
  return h;
}

/**
 * The characters of the base64 of `bytes` when they sit at each of the three byte offsets inside
 * a longer encoded text (`Bearer <token>`, `user:<token>`): only the characters made of the
 * secret's bits alone, so at most four bits at either end stay visible.
 */
function base64Cores(bytes: Buffer): string[] {
  return [0, 1, 2].map((offset) => {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    return encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset + bytes.length)) / 6));
  });
}

/**
 * The forms in which an upstream may hand a secret back: as is, base64 and base64url (at any
 * alignment), hex, percent-encoded (URI component, form, every byte) and JSON-escaped. Matching
 * ignores ASCII case, which covers upper- and lower-case hex and a token whose case was changed.
 * Not covered: a secret cut into pieces, encoded twice, or mixed into other bytes (compressed,
 * encrypted, XORed); no scrubber can find those reliably.
 */
export function encodedForms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const hex = bytes.toString('hex');
  const forms = [
    secret,
    encodeURIComponent(secret),
    new URLSearchParams({ s: secret }).toString().slice(2),
    hex,
    hex.replace(/../g, '%$&'),
    JSON.stringify(secret).slice(1, -1),
  ];
  for (const core of base64Cores(bytes)) forms.push(core, core.replace(/\+/g, '-').replace(/\//g, '_'));
  return [...new Set(forms.map(foldText))].filter((form) => form.length >= MIN_SECRET_LENGTH);
}

interface Form {
  /** Case-folded. */
  text: string;
  secret: string;
}

/**
 * Finds known secret values, in any of their encodedForms, in a text in one pass, however many
 * there are (every HMAC agent's key is one: 10,000 agents must not mean 10,000 scans of every
 * string). Multi-pattern Rabin–Karp: a rolling hash of the next MIN_SECRET_LENGTH characters picks
 * the forms that start there, longest first; a form counts only if the text really holds it.
 * Linear in the text. The forms are computed once, when a value is added, never per scan.
 */
export class SecretMatcher {
  private readonly byPrefix = new Map<number, Form[]>();
  private readonly formsOf = new Map<string, string[]>();

  constructor(values: Iterable<string> = []) {
    for (const value of values) this.insert(value);
    for (const bucket of this.byPrefix.values()) sortLongestFirst(bucket);
  }

  add(secret: string): void {
    for (const form of this.insert(secret)) sortLongestFirst(this.byPrefix.get(windowHash(form.text, 0))!);
  }

  /** Adds the forms of a new value at the end of their buckets; the caller puts the buckets in order. */
  private insert(secret: string): Form[] {
    if (secret.length < MIN_SECRET_LENGTH || this.formsOf.has(secret)) return [];
    const texts = encodedForms(secret);
    this.formsOf.set(secret, texts);
    return texts.map((text) => {
      const form = { text, secret };
      const h = windowHash(text, 0);
      const bucket = this.byPrefix.get(h);
      if (bucket) bucket.push(form);
      else this.byPrefix.set(h, [form]);
      return form;
    });
  }

  delete(secret: string): void {
    for (const text of this.formsOf.get(secret) ?? []) {
      const h = windowHash(text, 0);
      const bucket = this.byPrefix.get(h)!.filter((f) => f.secret !== secret);
      if (bucket.length > 0) this.byPrefix.set(h, bucket);
      else this.byPrefix.delete(h);
    }
    this.formsOf.delete(secret);
  }

  /**
   * `text` with every form of a known value replaced by `replacement(value)` (the value itself,
   * whichever form was found), leftmost first, longest at a position.
   */
  replaceIn(text: string, replacement: (secret: string) => string): string {
    if (this.byPrefix.size === 0 || text.length < MIN_SECRET_LENGTH) return text;
    let out = '';
    let copiedUpTo = 0;
    let h = windowHash(text, 0);
    for (let i = 0; i + MIN_SECRET_LENGTH <= text.length;) {
      const found = this.byPrefix.get(h)?.find((form) => holdsAt(text, i, form.text));
      if (found) {
        out += text.slice(copiedUpTo, i) + replacement(found.secret);
        i += found.text.length;
        copiedUpTo = i;
        if (i + MIN_SECRET_LENGTH <= text.length) h = windowHash(text, i);
        continue;
      }
      if (i + MIN_SECRET_LENGTH < text.length) {
        h = (Math.imul(h - Math.imul(fold(text.charCodeAt(i)), OUTGOING_WEIGHT), BASE) + fold(text.charCodeAt(i + MIN_SECRET_LENGTH))) | 0;
      }
      i += 1;
    }
    return copiedUpTo === 0 ? text : out + text.slice(copiedUpTo);
  }
}

const sortLongestFirst = (bucket: Form[]) => bucket.sort((a, b) => b.text.length - a.text.length);

function holdsAt(text: string, at: number, folded: string): boolean {
  if (at + folded.length > text.length) return false;
  for (let j = 0; j < folded.length; j++) if (fold(text.charCodeAt(at + j)) !== folded.charCodeAt(j)) return false;
  return true;
}
