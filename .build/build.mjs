// `npm run build`: src/**/*.ts → dist/**/*.js with SWC (emit only; `npm test` and `npm run typecheck`
// type-check with tsc). Only what changed is built: a source newer than its output, or every file
// when these settings or the SWC version change. Outputs whose source is gone are removed; nothing
// else is copied (the console's files are read from src/console/public). Plain JavaScript, so
// `npm start` on a built tree costs one directory walk before node dist/main.js.
// `node .build/build.mjs --all` rebuilds everything.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(root, 'src');
const outDir = join(root, 'dist');
const stampFile = join(outDir, '.build-stamp');
// Read from its package.json: loading SWC itself (a native binding) is left for when a file is stale.
const swcVersion = createRequire(import.meta.url)('@swc/core/package.json').version;

// What tsconfig.build.json asks of tsc, in SWC's words: CommonJS with ES module interop, ES2022,
// legacy decorators with their design-type metadata (Nest's dependency injection reads it), class
// fields assigned in the constructor as tsc does with useDefineForClassFields: false, no source
// maps. The jest transform in package.json uses the same parser and decorator settings.
const swcOptions = {
  swcrc: false,
  configFile: false,
  sourceMaps: false,
  module: { type: 'commonjs', strict: false, noInterop: false },
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
    target: 'es2022',
    keepClassNames: true,
  },
  minify: false,
};

/** Every .ts under `dir` that ships: not a spec, not a declaration file. */
function sources(dir, found = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sources(path, found);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') && !entry.name.endsWith('.d.ts')) found.push(path);
  }
  return found;
}

/** Every file under `dir` (none when it does not exist). */
function outputs(dir, found = []) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) outputs(path, found);
    else found.push(path);
  }
  return found;
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/** Removes `dir` and its parents up to dist/ while they are empty. */
function pruneEmpty(dir) {
  while (dir.startsWith(outDir + '/')) {
    try {
      rmdirSync(dir);
    } catch {
      return;
    }
    dir = dirname(dir);
  }
}

async function build() {
  const started = process.hrtime.bigint();
  const stamp = createHash('sha256').update(JSON.stringify({ swcVersion, swcOptions, script: readFileSync(fileURLToPath(import.meta.url), 'utf8') })).digest('hex');
  let previousStamp = '';
  try {
    previousStamp = readFileSync(stampFile, 'utf8');
  } catch {
    // No build yet.
  }
  const all = process.argv.includes('--all') || previousStamp !== stamp;

  const wanted = new Map(sources(srcDir).map((src) => [join(outDir, relative(srcDir, src)).replace(/\.ts$/, '.js'), src]));
  // Outputs with no source: removed, with their source maps (an earlier tsc build may have left some).
  let removed = 0;
  for (const out of outputs(outDir)) {
    if (out === stampFile || wanted.has(out)) continue;
    rmSync(out);
    pruneEmpty(dirname(out));
    removed++;
  }

  const stale = [...wanted].filter(([out, src]) => all || mtime(out) < mtime(src));
  const { transformFile } = stale.length > 0 ? await import('@swc/core') : {};
  await Promise.all(
    stale.map(async ([out, src]) => {
      const { code } = await transformFile(src, { ...swcOptions, filename: src });
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, code);
    }),
  );
  mkdirSync(outDir, { recursive: true });
  writeFileSync(stampFile, stamp);

  if (stale.length > 0 || removed > 0) {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    process.stderr.write(`build: ${stale.length} of ${wanted.size} files compiled, ${removed} removed (${ms.toFixed(0)} ms)\n`);
  }
}

build().catch((err) => {
  process.stderr.write(`build failed: ${err.message}\n`);
  process.exit(1);
});
