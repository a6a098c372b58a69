import { createHmac } from 'node:crypto';
import { normalizeFieldName } from '../config/gateway-config';
import { type JsonMapping, mapJson } from '../core/json-walk';
import { SecretMatcher } from '../secrets/secret-matcher';

/** Keys whose values are never shown (compared after normalizeFieldName, as a substring). */
const SENSITIVE_KEY_PARTS = ['password', 'passwd', 'secret', 'token', 'apikey', 'authorization', 'cookie', 'privatekey', 'credential'].map(normalizeFieldName);

/**
 * Patterns inside strings. Each starts behind a boundary (a lookbehind on its own character class)
 * and its repeated classes exclude the separators that follow them, so a match attempt only scans
 * its own run of characters and never backtracks across others: the scan stays linear.
 */
// `mayMatch`: a cheap test every match passes, so most strings (ids, paths, names) skip the regex.
const STRING_PATTERNS: ReadonlyArray<{ kind: string; regex: RegExp; mayMatch: (text: string) => boolean; accept?: (match: string) => boolean }> = [
  { kind: 'jwt', regex: /(?<![A-Za-z0-9_.-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, mayMatch: (t) => t.includes('eyJ') },
  { kind: 'bearer', regex: /(?<![A-Za-z])bearer[ \t]{1,16}[A-Za-z0-9._~+/=-]{8,}/gi, mayMatch: (t) => /earer/i.test(t) },
  { kind: 'aws_access_key', regex: /(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])/g, mayMatch: (t) => t.length >= 20 },
  { kind: 'email', regex: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}/g, mayMatch: (t) => t.includes('@') },
  { kind: 'ssn', regex: /(?<![0-9-])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9-])/g, mayMatch: (t) => t.includes('-') },
  { kind: 'card', regex: /(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])/g, mayMatch: (t) => t.length >= 13, accept: (m) => luhnValid(m.replace(/[ -]/g, '')) },
];

/**
 * PEM private keys. A block is redacted whole only when it is complete: BEGIN, then nothing but
 * RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`) and base64 lines, then the END of the same label,
 * within MAX_PEM_BODY characters. Anything else is not a key block, so only the marker is redacted,
 * with the full-width base64 lines right after it (a truncated key's material): the text that
 * follows stays visible, whatever it says (a `curl … | sh` must not hide behind a marker).
 */
const PEM_BEGIN = /-----BEGIN ((?:[A-Z0-9]{1,16} ){0,4})PRIVATE KEY-----/g;
const MAX_PEM_BODY = 16_384;
// Line breaks as they are, or JSON-escaped inside a string (`\n`). Every alternative below starts
// with a different character, so the patterns cannot backtrack into each other.
const PEM_BREAK = String.raw`(?:\r?\n|\\r\\n|\\n)`;
const PEM_HEADER = String.raw`${PEM_BREAK}[A-Za-z-]{1,32}: [A-Za-z0-9,-]{1,128}(?=${PEM_BREAK})`;
const PEM_BODY = new RegExp(String.raw`^[ \t]*(?:${PEM_HEADER}){0,8}(?:[A-Za-z0-9+/=\s]|\\[rn])*$`);
// Lines of 64 base64 characters, the width PEM writers wrap at, at most MAX_PEM_BODY in all.
const PEM_MATERIAL_LINES = new RegExp(String.raw`(?:[ \t]*${PEM_BREAK}[A-Za-z0-9+/=]{64}(?![A-Za-z0-9+/=])){1,256}`, 'y');

/**
 * How deep redaction and secret scrubbing walk. A value nested deeper is replaced whole by
 * TOO_DEEP, never passed on unread: a secret must not get out by being nested deep enough.
 */
const MAX_DEPTH = 64;
export const REDACTED = '[REDACTED]';
export const TOO_DEEP = '[REDACTED:too_deep]';

export function isSensitiveKey(key: string): boolean {
  const normalized = normalizeFieldName(key);
  return SENSITIVE_KEY_PARTS.some((part) => normalized.includes(part));
}

export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** Secret values to scrub wherever they appear. */
export interface KnownSecrets {
  matcher(): SecretMatcher;
}

const NO_SECRETS = new SecretMatcher([]);

/**
 * The one redactor: audit records, the application log, error texts and approval listings.
 * Markers carry a short keyed hash of the value (`[REDACTED:email:1a2b3c4d]`), so a reviewer can
 * see that two records hold the same value without seeing it.
 */
export class Redactor {
  private extraKeys: ReadonlySet<string>;
  private readonly redaction: JsonMapping = {
    string: (text) => this.redactString(text),
    key: (key) => this.redactString(key),
    member: (key) => (this.isSensitive(key) ? REDACTED : undefined),
    tooDeep: () => TOO_DEEP,
    maxDepth: MAX_DEPTH,
    instances: 'keep',
  };
  private readonly scrubbing: JsonMapping = {
    string: (text) => this.scrubSecretsIn(text),
    key: (key) => this.scrubSecretsIn(key),
    tooDeep: () => TOO_DEEP,
    maxDepth: MAX_DEPTH,
  };

  /** `extraSensitiveKeys` (normalised, exact match) are redacted like the built-in ones. */
  constructor(
    private readonly markerKey: Buffer,
    private readonly secrets: KnownSecrets = { matcher: () => NO_SECRETS },
    extraSensitiveKeys: Iterable<string> = [],
  ) {
    this.extraKeys = new Set(extraSensitiveKeys);
  }

  /** Replaces the extra sensitive keys (a live reload's forbidden fields). */
  setExtraSensitiveKeys(keys: Iterable<string>): void {
    this.extraKeys = new Set(keys);
  }

  marker(kind: string, value: string): string {
    return `[REDACTED:${kind}:${createHmac('sha256', this.markerKey).update(value).digest('hex').slice(0, 8)}]`;
  }

  redactString(text: string): string {
    let out = this.scrubSecretsIn(text);
    out = this.redactPem(out);
    for (const { kind, regex, mayMatch, accept } of STRING_PATTERNS) {
      if (mayMatch(out)) out = out.replace(regex, (match) => (accept && !accept(match) ? match : this.marker(kind, match)));
    }
    return out;
  }

  /**
   * A copy of JSON-like data with sensitive keys and sensitive strings redacted, to a depth of 64;
   * deeper values are replaced by TOO_DEEP. Class instances (a request, a socket) are not data:
   * they are returned as they are.
   */
  redact<T>(value: T): T {
    return mapJson(value, this.redaction);
  }

  /**
   * Only the known secret values: for tool results, which may carry other data as is. The same
   * depth rule as redact: what is nested deeper than 64 levels is replaced by TOO_DEEP.
   */
  scrubSecrets<T>(value: T): T {
    return mapJson(value, this.scrubbing);
  }

  private scrubSecretsIn(text: string): string {
    return this.secrets.matcher().replaceIn(text, (secret) => this.marker('secret', secret));
  }

  private isSensitive(key: string): boolean {
    return isSensitiveKey(key) || this.extraKeys.has(normalizeFieldName(key));
  }

  /**
   * Linear: a block's END can only be at the first `-----` after its BEGIN (a body never holds
   * one), which is never further than the next BEGIN, so no character is scanned twice for an
   * END; the body checks are bounded by MAX_PEM_BODY.
   */
  private redactPem(text: string): string {
    if (!text.includes('PRIVATE KEY-----')) return text;
    let out = '';
    let from = 0;
    PEM_BEGIN.lastIndex = 0;
    for (let begin = PEM_BEGIN.exec(text); begin; begin = PEM_BEGIN.exec(text)) {
      const bodyStart = begin.index + begin[0].length;
      const dashes = text.indexOf('-----', bodyStart);
      const end = `-----END ${begin[1]}PRIVATE KEY-----`;
      const complete = dashes !== -1 && dashes - bodyStart <= MAX_PEM_BODY && text.startsWith(end, dashes) && PEM_BODY.test(text.slice(bodyStart, dashes));
      let stop = complete ? dashes + end.length : bodyStart;
      if (!complete) {
        PEM_MATERIAL_LINES.lastIndex = bodyStart;
        if (PEM_MATERIAL_LINES.test(text)) stop = PEM_MATERIAL_LINES.lastIndex;
      }
      out += text.slice(from, begin.index) + this.marker('private_key', text.slice(begin.index, stop));
      from = stop;
      PEM_BEGIN.lastIndex = stop;
    }
    return out + text.slice(from);
  }
}
