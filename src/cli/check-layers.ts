// npm run check:layers (part of npm test): every import between the folders of src/ points down
// the layers below, and no folders import each other in a loop. Reads the imports with the
// TypeScript compiler's own pre-processor; nothing is run. Exits 1 naming each offending import.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import * as ts from 'typescript';

/**
 * From the ground up. A folder (or a top-level file, by its name without `.ts`) may import its own
 * layer's other members only where listed in SAME_LAYER, and anything in a lower layer.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['core'],
  ['config'],
  ['database', 'context', 'metrics', 'http-server', 'telemetry'],
  ['secrets'],
  ['redaction'],
  ['audit'],
  ['kinds'],
  ['registry', 'audit-export'],
  ['executor'],
  ['auth', 'throttle', 'policy'],
  ['approval'],
  ['pipeline'],
  ['edge', 'logger.options'],
  ['tools', 'mcp', 'approvals-api', 'audit-api', 'console', 'health'],
  ['app.setup', 'app.module'],
  ['main', 'cli'],
];
/** Imports inside one layer that are part of the design: importer → imported. */
const SAME_LAYER: ReadonlyMap<string, readonly string[]> = new Map([
  ['policy', ['auth', 'throttle']],
  ['auth', ['throttle']],
  ['app.module', ['app.setup']],
]);

const SRC = resolve(__dirname, '..');

function unitOf(file: string): string {
  const [first] = relative(SRC, file).split(sep);
  return first.replace(/\.ts$/, '');
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.spec.ts') ? [path] : [];
  });
}

const layerOf = new Map(LAYERS.flatMap((units, layer) => units.map((unit) => [unit, layer] as const)));
const problems: string[] = [];
const edges = new Map<string, Set<string>>();

for (const file of sourceFiles(SRC)) {
  const from = unitOf(file);
  if (!layerOf.has(from)) problems.push(`${relative(SRC, file)}: src/${from} has no layer in check-layers.ts`);
  for (const { fileName } of ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles) {
    if (!fileName.startsWith('.')) continue;
    const to = unitOf(resolve(dirname(file), fileName));
    if (to === from) continue;
    edges.set(from, (edges.get(from) ?? new Set()).add(to));
    const [a, b] = [layerOf.get(from) ?? -1, layerOf.get(to) ?? Infinity];
    const allowed = b < a || (a === b && (SAME_LAYER.get(from) ?? []).includes(to));
    if (!allowed) problems.push(`${relative(SRC, file)} imports ${fileName}: ${from} may not import ${to} (it is not below it)`);
  }
}

// A loop among folders can only come from SAME_LAYER entries; report it whole.
function findCycle(start: string, at: string, path: string[]): string[] | undefined {
  for (const next of edges.get(at) ?? []) {
    if (next === start) return [...path, next];
    if (!path.includes(next) && layerOf.get(next) === layerOf.get(start)) {
      const found = findCycle(start, next, [...path, next]);
      if (found) return found;
    }
  }
  return undefined;
}
for (const unit of edges.keys()) {
  const cycle = findCycle(unit, unit, [unit]);
  if (cycle && cycle[0] === [...cycle].sort()[0]) problems.push(`folders import each other in a loop: ${cycle.join(' → ')}`);
}

if (problems.length > 0) {
  process.stderr.write(`${problems.join('\n')}\n${problems.length} layer problem(s)\n`);
  process.exit(1);
}
process.stdout.write(`layers: ${edges.size} folders, every import points down\n`);
