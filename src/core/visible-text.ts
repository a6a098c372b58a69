import { type JsonMapping, mapJson } from './json-walk';

/**
 * What an approver reads must be what runs ("Trojan Source"): characters that change the order in
 * which text is drawn, or draw nothing at all, are shown as `<U+XXXX>` in every approver view, and
 * named with where they are. The stored and executed arguments are never changed; only views are.
 *
 * Hidden here: every Unicode format character (category Cf: bidirectional embeddings, overrides and
 * isolates U+202A–202E and U+2066–2069, marks U+200E/200F/061C, zero-width U+200B–200D, U+2060–2064,
 * U+FEFF, the soft hyphen U+00AD, tag characters…), the line and paragraph separators U+2028/2029,
 * control characters other than tab and line feed (a carriage return only when no line feed follows:
 * a terminal would draw over the line), and characters that draw nothing though they are letters or
 * marks (variation selectors, the combining grapheme joiner, Hangul fillers).
 */
const HIDDEN_SOURCE =
  '[\\p{Cf}\\p{Zl}\\p{Zp}\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F\\u034F\\u115F\\u1160\\u3164\\uFFA0\\uFE00-\\uFE0F\\u{E0100}-\\u{E01EF}]|\\r(?!\\n)';

// The class lists combining and variation characters one by one on purpose: each is hidden on its own.
// eslint-disable-next-line no-misleading-character-class
const hiddenPattern = () => new RegExp(HIDDEN_SOURCE, 'gu');
// eslint-disable-next-line no-misleading-character-class
const HIDDEN_TEST = new RegExp(HIDDEN_SOURCE, 'u');

/** U+XXXX, at least four hex digits. */
export function codePointLabel(character: string): string {
  return `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

export function hasHidden(text: string): boolean {
  return HIDDEN_TEST.test(text);
}

/** The text with every hidden character written as `<U+XXXX>`: for display only, never to run. */
export function showHidden(text: string): string {
  return hasHidden(text) ? text.replace(hiddenPattern(), (character) => `<${codePointLabel(character)}>`) : text;
}

/** A copy of a JSON value with showHidden applied to every string and object key, however deep. */
export function showHiddenIn<T>(value: T): T {
  return mapJson(value, SHOW_HIDDEN);
}

const SHOW_HIDDEN: JsonMapping = { string: showHidden, key: showHidden, maxDepth: Infinity };

/**
 * JSON.stringify(value) with every hidden character written as a \uXXXX escape (JSON.stringify
 * leaves them raw). The same JSON value: JSON.stringify(JSON.parse(result)) gives back the exact
 * bytes that arguments_sha256 covers. Hidden characters only occur inside JSON strings, so
 * replacing them in the text keeps it valid.
 */
export function jsonWithVisibleEscapes(value: unknown): string {
  const json = JSON.stringify(value);
  if (!hasHidden(json)) return json;
  return json.replace(hiddenPattern(), (character) =>
    Array.from({ length: character.length }, (_, i) => `\\u${character.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}

const NAMES: Record<number, string> = {
  0x00ad: 'soft hyphen',
  0x034f: 'combining grapheme joiner',
  0x061c: 'arabic letter mark',
  0x115f: 'hangul choseong filler',
  0x1160: 'hangul jungseong filler',
  0x180e: 'mongolian vowel separator',
  0x200b: 'zero width space',
  0x200c: 'zero width non-joiner',
  0x200d: 'zero width joiner',
  0x200e: 'left-to-right mark',
  0x200f: 'right-to-left mark',
  0x2028: 'line separator',
  0x2029: 'paragraph separator',
  0x202a: 'left-to-right embedding',
  0x202b: 'right-to-left embedding',
  0x202c: 'pop directional formatting',
  0x202d: 'left-to-right override',
  0x202e: 'right-to-left override',
  0x2060: 'word joiner',
  0x2061: 'function application',
  0x2062: 'invisible times',
  0x2063: 'invisible separator',
  0x2064: 'invisible plus',
  0x2066: 'left-to-right isolate',
  0x2067: 'right-to-left isolate',
  0x2068: 'first strong isolate',
  0x2069: 'pop directional isolate',
  0x3164: 'hangul filler',
  0xfeff: 'zero width no-break space (byte order mark)',
  0xffa0: 'halfwidth hangul filler',
};

function nameOf(character: string): string {
  const code = character.codePointAt(0)!;
  if (NAMES[code]) return NAMES[code];
  if (code >= 0xe0000 && code <= 0xe007f) return 'tag character';
  if ((code >= 0xfe00 && code <= 0xfe0f) || (code >= 0xe0100 && code <= 0xe01ef)) return 'variation selector';
  if (code <= 0x9f) return 'control character';
  return 'format character';
}

/** One kind of hidden character at one place: an argument (and line), a file line, a path. */
export interface HiddenCharacterFinding {
  /** U+202E */
  character: string;
  name: string;
  /** e.g. `argument content, line 3`, `current file, line 7`, `argument options (a key)` */
  where: string;
  count: number;
}

/** So a file full of zero-width spaces gives a readable answer, not megabytes of findings. */
const MAX_FINDINGS = 20;

/** Collects findings over several texts, at most MAX_FINDINGS of them; `omitted` counts the rest. */
export class HiddenCharacterScan {
  readonly findings: HiddenCharacterFinding[] = [];
  omitted = 0;

  /** A text; each place says `where, line N` when `numberLines` (by default, when the text has several). */
  text(where: string, text: string, numberLines = text.includes('\n')): this {
    if (!hasHidden(text)) return this;
    let line = 1;
    let counted = 0;
    for (const match of text.matchAll(hiddenPattern())) {
      for (let at = text.indexOf('\n', counted); at !== -1 && at < match.index; at = text.indexOf('\n', at + 1)) line += 1;
      counted = match.index;
      this.add(numberLines ? `${where}, line ${line}` : where, match[0]);
    }
    return this;
  }

  /** Every string and key of a JSON value; `where` names each by its argument path. */
  value(where: string, value: unknown, path = '', depth = 0): this {
    if (typeof value === 'string') return this.text(`${where} ${path || '(the whole value)'}`, value);
    if (value === null || typeof value !== 'object' || depth > 64) return this;
    const isArray = Array.isArray(value);
    for (const [key, item] of Object.entries(value)) {
      const itemPath = isArray ? `${path}[${key}]` : path ? `${path}.${showHidden(key)}` : showHidden(key);
      if (!isArray) this.text(`${where} ${itemPath} (a key)`, key);
      this.value(where, item, itemPath, depth + 1);
    }
    return this;
  }

  private add(where: string, character: string): void {
    const label = codePointLabel(character);
    const known = this.findings.find((f) => f.where === where && f.character === label);
    if (known) known.count += 1;
    else if (this.findings.length < MAX_FINDINGS) this.findings.push({ character: label, name: nameOf(character), where, count: 1 });
    else this.omitted += 1;
  }

  /** One sentence naming what was found and where, or undefined when nothing was. */
  describe(): string | undefined {
    if (this.findings.length === 0) return undefined;
    const listed = this.findings.map((f) => `${f.character} (${f.name})${f.count > 1 ? ` ×${f.count}` : ''} in ${f.where}`).join('; ');
    const more = this.omitted > 0 ? `; and ${this.omitted} more` : '';
    return (
      `Hidden or direction-changing characters, shown here as <U+XXXX>: ${listed}${more}. ` +
      'Text with them can read differently from what runs: check what each one does before approving'
    );
  }
}

/** The hidden characters of stored arguments, by argument path (for the approval views). */
export function hiddenCharactersOf(args: unknown): HiddenCharacterFinding[] {
  return new HiddenCharacterScan().value('argument', args).findings;
}

/**
 * The same rule for the approver console (a browser script, served as /console/visible-text.js):
 * defines `showHidden(text)` on window.
 */
export function showHiddenBrowserScript(): string {
  return [
    '// Generated from src/core/visible-text.ts: the one rule for which characters approvers see as <U+XXXX>.',
    '(function () {',
    "  'use strict';",
    `  var pattern = new RegExp(${JSON.stringify(HIDDEN_SOURCE)}, 'gu');`,
    '  window.showHidden = function (text) {',
    '    return String(text).replace(pattern, function (character) {',
    '      var hex = character.codePointAt(0).toString(16).toUpperCase();',
    "      while (hex.length < 4) hex = '0' + hex;",
    "      return '<U+' + hex + '>';",
    '    });',
    '  };',
    '})();',
    '',
  ].join('\n');
}
