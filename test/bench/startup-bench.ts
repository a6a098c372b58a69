// npm run bench:startup [-- --runs 3 --tools 10,10000 --distinct --cpu-prof]
// Start-up time of the built gateway (node dist/main.js, as `npm start` runs it after its build):
// from spawning the process to the first 200 from /healthz, with a config of N fs.read tools (one
// shared input_schema, as most tools of a large config share theirs; --distinct: each its own, each
// compiled at load) and, beside it, the time the config loader alone takes for that file in this
// process. Medians of --runs starts, in wall time and in the CPU time the gateway process used until
// it answered (read from /proc: steadier than wall time on a shared machine). --cpu-prof writes a V8
// profile of the last start at each size into bench-profiles/ (summarize it with
// test/bench/cpu-profile-summary.ts).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseGatewayConfig } from '../../src/config/config.loader';
import { KIND_CONFIGS } from '../../src/kinds';
import { freePort } from '../support/free-port';
import { spawnGateway, stopProcess, waitFor } from './gateway-process';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    tools: { type: 'string', default: '10,10000' },
    distinct: { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const sizes = values.tools.split(',').map(Number);

const root = mkdtempSync(join(tmpdir(), 'startup-bench-'));
const workspace = join(root, 'workspace');
mkdirSync(workspace);

/** N fs.read tools sharing one input_schema (distinct: each its own), one role, one agent. */
function gatewayConfig(tools: number, distinct: boolean): string {
  const pathArg = (i: number) =>
    `{ type: object, required: [path], additionalProperties: false, properties: { path: { type: string, minLength: 1, maxLength: ${distinct ? 4096 + i : 4096} } } }`;
  return [
    'roles: { reader: {} }',
    'agents:',
    '  - { id: bench_agent, role: reader, key: { alg: hmac-sha256, secret: "startup-bench-secret-0123456789" } }',
    'tools:',
    ...Array.from({ length: tools }, (_, i) => `  tool_${i}: { kind: fs.read, roles: [reader], input_schema: ${pathArg(i)} }`),
    '',
  ].join('\n');
}

/** CPU milliseconds (user + system) a process has used so far; undefined where there is no /proc. */
function cpuMsOf(pid: number | undefined): number | undefined {
  try {
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th, in clock ticks (100 a second on Linux).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** Milliseconds from spawn to /healthz 200, and the CPU time the gateway used until then. */
async function startOnce(configFile: string, tag: string, profile: boolean): Promise<{ wall: number; cpu?: number }> {
  const port = await freePort();
  const dataDir = join(root, `data-${tag}`);
  rmSync(dataDir, { recursive: true, force: true });
  const started = performance.now();
  const nodeArgs = profile ? ['--cpu-prof', '--cpu-prof-dir', 'bench-profiles', '--cpu-prof-name', `startup-${tag}.cpuprofile`] : [];
  const child = spawnGateway({ port, configFile, dataDir, workspace, nodeArgs, logLevel: 'warn' });
  try {
    await waitFor(`http://127.0.0.1:${port}/healthz`, { child, status: 200 });
    return { wall: performance.now() - started, cpu: cpuMsOf(child.pid) };
  } finally {
    await stopProcess(child);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  console.log(`start-up of node dist/main.js to /healthz 200, median of ${runs} (2 shared cores: compare runs made together)`);
  for (const tools of sizes) {
    const text = gatewayConfig(tools, values.distinct);
    const configFile = join(root, `gateway-${tools}.yaml`);
    writeFileSync(configFile, text);
    const loadStarted = performance.now();
    const config = parseGatewayConfig(text, configFile, { GATEWAY_DATA_DIR: join(root, 'load') }, { kinds: KIND_CONFIGS });
    const loadMs = performance.now() - loadStarted;
    if (config.tools.size !== tools) throw new Error(`loaded ${config.tools.size} tools, expected ${tools}`);
    const starts: Array<{ wall: number; cpu?: number }> = [];
    for (let i = 0; i < runs; i++) starts.push(await startOnce(configFile, String(tools), values['cpu-prof'] && i === runs - 1));
    const times = starts.map((s) => s.wall);
    const cpu = starts.every((s) => s.cpu !== undefined) ? `, ${Math.round(median(starts.map((s) => s.cpu!)))} ms CPU` : '';
    console.log(
      `${String(tools).padStart(6)} tools${values.distinct ? ' (distinct schemas)' : ''}: ${Math.round(median(times))} ms to /healthz${cpu} (runs: ${times.map(Math.round).join(', ')}); config load alone ${Math.round(loadMs)} ms`,
    );
  }
}

main()
  .catch((err: Error) => {
    console.error(err.message);
    process.exitCode = 1;
  })
  .finally(() => rmSync(root, { recursive: true, force: true }));
