// npm run bench:startup [-- --runs 3 --tools 10,10000 --cpu-prof]
// Start-up time of the built gateway (node dist/main.js, as `npm start` runs it after its build):
// from spawning the process to the first 200 from /healthz, with a config of N fs.read tools (one
// shared input_schema, as most tools of a large config share theirs) and, beside it, the time the
// config loader alone takes for that file in this process. Medians of --runs starts. --cpu-prof
// writes a V8 profile of the last start at each size into bench-profiles/ (summarize it with
// test/bench/cpu-profile-summary.ts).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { parseGatewayConfig } from '../../src/config/config.loader';
import { KIND_CONFIGS } from '../../src/kinds';
import { freePort } from '../support/free-port';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, tools: { type: 'string', default: '10,10000' }, 'cpu-prof': { type: 'boolean', default: false } },
});
const runs = Number(values.runs);
const sizes = values.tools.split(',').map(Number);

const root = mkdtempSync(join(tmpdir(), 'startup-bench-'));
const workspace = join(root, 'workspace');
mkdirSync(workspace);

/** N fs.read tools sharing one input_schema, one role, one agent. */
function gatewayConfig(tools: number): string {
  const pathArg = '{ type: object, required: [path], additionalProperties: false, properties: { path: { type: string, minLength: 1, maxLength: 4096 } } }';
  return [
    'roles: { reader: {} }',
    'agents:',
    '  - { id: bench_agent, role: reader, key: { alg: hmac-sha256, secret: "startup-bench-secret-0123456789" } }',
    'tools:',
    ...Array.from({ length: tools }, (_, i) => `  tool_${i}: { kind: fs.read, roles: [reader], input_schema: ${pathArg} }`),
    '',
  ].join('\n');
}

async function healthy(url: string, child: ReturnType<typeof spawn>): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode} before ${url} answered`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(10);
  }
}

/** Milliseconds from spawn to /healthz 200. */
async function startOnce(configFile: string, tag: string, profile: boolean): Promise<number> {
  const port = await freePort();
  const dataDir = join(root, `data-${tag}`);
  rmSync(dataDir, { recursive: true, force: true });
  const started = performance.now();
  const args = profile ? ['--cpu-prof', '--cpu-prof-dir', 'bench-profiles', '--cpu-prof-name', `startup-${tag}.cpuprofile`, 'dist/main.js'] : ['dist/main.js'];
  const child = spawn(process.execPath, args, {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      GATEWAY_CONFIG: configFile,
      GATEWAY_DATA_DIR: dataDir,
      GATEWAY_WORKSPACE: workspace,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await healthy(`http://127.0.0.1:${port}/healthz`, child);
    return performance.now() - started;
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  console.log(`start-up of node dist/main.js to /healthz 200, median of ${runs} (2 shared cores: compare runs made together)`);
  for (const tools of sizes) {
    const text = gatewayConfig(tools);
    const configFile = join(root, `gateway-${tools}.yaml`);
    writeFileSync(configFile, text);
    const loadStarted = performance.now();
    const config = parseGatewayConfig(text, configFile, { GATEWAY_DATA_DIR: join(root, 'load') }, { kinds: KIND_CONFIGS });
    const loadMs = performance.now() - loadStarted;
    if (config.tools.size !== tools) throw new Error(`loaded ${config.tools.size} tools, expected ${tools}`);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push(await startOnce(configFile, String(tools), values['cpu-prof'] && i === runs - 1));
    console.log(
      `${String(tools).padStart(6)} tools: ${Math.round(median(times))} ms to /healthz (runs: ${times.map(Math.round).join(', ')}); config load alone ${Math.round(loadMs)} ms`,
    );
  }
}

main()
  .catch((err: Error) => {
    console.error(err.message);
    process.exitCode = 1;
  })
  .finally(() => rmSync(root, { recursive: true, force: true }));
