import { isMap, isScalar, LineCounter, parseDocument, visit, YAMLParseError } from 'yaml';

/**
 * YAML.parse(text, { uniqueKeys: true, maxAliasCount }) in linear time: the yaml package compares
 * each key of a mapping with every earlier one, which for a `tools` section of 10,000 entries is
 * most of the start-up. Keys are the same when they are the same scalar value (the package's own
 * rule); the first duplicate in the text is thrown as the package throws it (a YAMLParseError
 * with its line), as is any other error.
 */
export function parseYamlUniqueKeys(text: string, maxAliasCount: number): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: false, lineCounter });
  for (const warning of doc.warnings) process.emitWarning(warning);
  if (doc.errors.length > 0) throw doc.errors[0];
  let first: number | undefined;
  visit(doc, {
    Map(_key, map) {
      if (!isMap(map)) return;
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        // A key that is no scalar (a mapping, a sequence) equals no other, as in the package.
        const key: unknown = isScalar(pair.key) ? pair.key.value : pair.key === null ? null : pair.key;
        if (seen.has(key)) {
          const at = (isScalar(pair.key) && pair.key.range?.[0]) || map.range?.[0] || 0;
          if (first === undefined || at < first) first = at;
        } else {
          seen.add(key);
        }
      }
    },
  });
  if (first !== undefined) {
    const { line, col } = lineCounter.linePos(first);
    const error = new YAMLParseError([first, first + 1], 'DUPLICATE_KEY', `Map keys must be unique at line ${line}, column ${col}:`);
    error.linePos = [{ line, col }, lineCounter.linePos(first + 1)];
    throw error;
  }
  return doc.toJS({ maxAliasCount });
}
