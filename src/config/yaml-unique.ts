import { CORE_SCHEMA, load, YAMLException } from 'js-yaml';
import { YAMLParseError } from 'yaml';

/**
 * The config file's YAML as plain data, read by js-yaml (about ten times faster than the yaml
 * package's parseDocument on a `tools` section of 10,000 entries, where it was most of the
 * start-up), with YAML 1.2's core schema: no custom or `!!binary` tags (refused), no `<<` merge
 * keys. A key given twice in one mapping is refused (js-yaml compares keys as the strings they
 * become, so `1` and `"1"` are the same key), named with its line. Aliases: at most `maxAliasCount`
 * uses in all, nested ones counted as often as they are expanded, and none inside the node it
 * names. Every problem is thrown as a YAMLParseError with its line where there is one.
 */
export function parseYamlUniqueKeys(text: string, maxAliasCount: number): unknown {
  let doc: unknown;
  try {
    // The reason and line only: js-yaml's message quotes the lines around, which may hold a secret.
    const onWarning = (warning: YAMLException) =>
      process.emitWarning(`${warning.reason}${warning.mark ? ` at line ${warning.mark.line + 1}` : ''}`, 'YAMLWarning');
    doc = load(text, { schema: CORE_SCHEMA, onWarning });
  } catch (err) {
    if (err instanceof YAMLException) throw syntaxError(err, text);
    throw err;
  }
  // An alias is written `*name`: without a `*` anywhere there is none to count.
  if (text.includes('*')) refuseAliasAbuse(doc, maxAliasCount);
  return doc ?? null;
}

function syntaxError(err: YAMLException, text: string): YAMLParseError {
  const mark = err.mark as { line: number; column: number; position: number } | undefined;
  const reason = err.reason ?? 'invalid YAML';
  if (!mark) return new YAMLParseError([0, 0], 'IMPOSSIBLE', reason);
  const duplicate = reason === 'duplicated mapping key';
  const problem = duplicate ? ['duplicate key', keyAt(text, mark.position)].filter(Boolean).join(' ') : reason;
  const error = new YAMLParseError([mark.position, mark.position + 1], duplicate ? 'DUPLICATE_KEY' : 'IMPOSSIBLE', `${problem} (column ${mark.column + 1})`);
  error.linePos = [{ line: mark.line + 1, col: mark.column + 1 }];
  return error;
}

// A mapping key as written where it starts: quoted, or plain up to its `:`.
const KEY = /"(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|[^\s:,{}[\]#][^\n:,{}[\]#]*?(?=\s*:)/y;

/** The key that starts at `position`, as written (quoted, at most 64 characters); undefined when it cannot be read there. */
function keyAt(text: string, position: number): string | undefined {
  KEY.lastIndex = position;
  const written = KEY.exec(text)?.[0];
  if (written === undefined) return undefined;
  const shown = written.length > 64 ? `${written.slice(0, 63)}…` : written;
  return /^["']/.test(shown) ? shown : `"${shown}"`;
}

/**
 * js-yaml resolves an alias to the very object its anchor names, so the data is a graph: counted as
 * it would be expanded, a few nested aliases stand for billions of values (and a cycle for
 * infinitely many). Every visit of an object already seen is one alias use; nested uses are visited
 * again, so they count as often as they would be copied, and the walk stops at the limit.
 */
function refuseAliasAbuse(doc: unknown, maxAliasCount: number): void {
  const seen = new Set<object>();
  const path = new Set<object>();
  let uses = 0;
  const visit = (value: unknown): void => {
    if (value === null || typeof value !== 'object') return;
    if (path.has(value)) throw new YAMLParseError([0, 0], 'BAD_ALIAS', 'an alias refers to a node that contains it');
    if (seen.has(value) && ++uses > maxAliasCount) {
      throw new YAMLParseError(
        [0, 0],
        'RESOURCE_EXHAUSTION',
        `more than ${maxAliasCount} alias uses (counted as expanded): refused as a resource exhaustion attack`,
      );
    }
    seen.add(value);
    path.add(value);
    for (const item of Array.isArray(value) ? value : Object.values(value)) visit(item);
    path.delete(value);
  };
  visit(doc);
}
