// npm run test:crash [-- --duration 4 --rounds 6 --concurrency 64]
// Starts the built gateway as a child process, drives concurrent agents (reads, writes that go to
// approval, denied calls) and an approver, kills it with SIGKILL mid-load (and, last, SIGTERM),
// restarts it on the same data dir, and checks that nothing it acknowledged was lost.
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from '../support/free-port';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { signRequestHeaders } from '../../src/auth/signature';
import { verifyAuditLog } from '../../src/audit/audit-verify';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '6' },
    concurrency: { type: 'string', default: '64' },
    keep: { type: 'boolean', default: false },
  },
});
const DURATION_MS = Number(values.duration) * 1000;
const ROUNDS = Math.max(2, Number(values.rounds));
const CONCURRENCY = Number(values.concurrency);
const AGENTS = Array.from({ length: 8 }, (_, i) => ({ id: `crash_agent_${i}`, secret: `crash-secret-${i}-${randomBytes(8).toString('hex')}` }));
const APPROVER_TOKEN = `approver-${randomBytes(8).toString('hex')}`;
const AUDIT_KEY = randomBytes(32).toString('hex');

const root = mkdtempSync(join(tmpdir(), 'agw-crash-'));
const workspace = join(root, 'workspace');
const dataDir = join(root, 'data');
const configFile = join(root, 'gateway.yaml');
mkdirSync(workspace);
writeFileSync(join(workspace, 'hello.txt'), 'hello');
const pathArg = '{ type: object, required: [path], additionalProperties: false, properties: { path: { type: string } } }';
writeFileSync(
  configFile,
  `settings: { max_pending_approvals_per_agent: 100000, unauthenticated_rate_limit: { limit: 100000, ttl_s: 60 } }
roles: { worker: { rate_limit: { limit: 1000000, ttl_s: 60 } } }
agents:
${AGENTS.map((a) => `  - { id: ${a.id}, role: worker, key: { alg: hmac-sha256, secret: "${a.secret}" } }`).join('\n')}
approvers:
  - { id: crash_approver, token_sha256: "${createHash('sha256').update(APPROVER_TOKEN).digest('hex')}" }
tools:
  read_file: { kind: fs.read, roles: [worker], input_schema: ${pathArg} }
  list_dir: { kind: fs.list, roles: [worker], input_schema: ${pathArg} }
  write_file:
    kind: fs.write
    roles: [worker]
    input_schema: { type: object, required: [path, content], additionalProperties: false, properties: { path: { type: string }, content: { type: string } } }
`,
);

interface Acked {
  status: number;
  auditId: string;
  approvalId?: string;
  kind: 'call' | 'approve';
}

const problems: string[] = [];
const problem = (round: number, text: string) => problems.push(`round ${round}: ${text}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let port = 0;
let base = '';

function startGateway(): ChildProcess {
  const child = spawn(process.execPath, ['dist/main.js'], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', GATEWAY_CONFIG: configFile, GATEWAY_DATA_DIR: dataDir, GATEWAY_WORKSPACE: workspace, GATEWAY_AUDIT_KEY: AUDIT_KEY, LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

async function waitReady(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error('the gateway did not become ready');
}

let sequence = 0;
async function call(agent: (typeof AGENTS)[number], tool: string, args: unknown): Promise<Response> {
  const path = '/api/tools/call';
  const body = JSON.stringify({ agent_id: agent.id, agent_version: '1.0.0', request_id: `crash_${process.pid}_${++sequence}`, tool, arguments: args });
  return fetch(base + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...signRequestHeaders(agent.id, { alg: 'hmac-sha256', secret: agent.secret }, 'POST', path, body) },
    body,
  });
}

const asApprover = { Authorization: `Bearer ${APPROVER_TOKEN}` };
async function approve(approvalId: string): Promise<Response> {
  return fetch(`${base}/approve`, { method: 'POST', headers: { ...asApprover, 'Content-Type': 'application/json' }, body: JSON.stringify({ approval_id: approvalId, approved: true }) });
}

function payload(n: number): string {
  return `len=${n}\n${'x'.repeat(n)}\nEND\n`;
}

async function load(acked: Acked[], stop: { now: boolean }): Promise<void> {
  const agentLoop = async (w: number) => {
    const agent = AGENTS[w % AGENTS.length];
    while (!stop.now) {
      const r = Math.random();
      try {
        let res: Response;
        if (r < 0.55) res = await call(agent, Math.random() < 0.5 ? 'read_file' : 'list_dir', { path: Math.random() < 0.5 ? 'hello.txt' : '.' });
        else if (r < 0.8) res = await call(agent, 'write_file', { path: `out/${w}-${sequence % 7}.txt`, content: payload(Math.floor(Math.random() * 200_000)) });
        else res = await call(agent, 'delete_everything', {});
        const body = (await res.json()) as { audit_id: string; approval_id?: string };
        if (res.status < 300) acked.push({ status: res.status, auditId: body.audit_id, approvalId: body.approval_id, kind: 'call' });
      } catch {
        // the gateway went away mid-request: not acknowledged
      }
    }
  };
  const approverLoop = async () => {
    while (!stop.now) {
      try {
        const list = (await (await fetch(`${base}/api/approvals?status=pending&limit=20`, { headers: asApprover })).json()) as { approvals: Array<{ approval_id: string }> };
        for (const { approval_id } of list.approvals.slice(0, 5)) {
          const res = await approve(approval_id);
          const body = (await res.json()) as { audit_id: string };
          if (res.status < 300) acked.push({ status: res.status, auditId: body.audit_id, approvalId: approval_id, kind: 'approve' });
        }
      } catch {
        // gone
      }
    }
  };
  await Promise.all([...Array.from({ length: CONCURRENCY }, (_, w) => agentLoop(w)), approverLoop(), approverLoop()]);
}

async function check(round: number, acked: Acked[]): Promise<void> {
  const auditFile = join(dataDir, 'audit.jsonl');
  const verified = await verifyAuditLog(auditFile, { indexFile: join(dataDir, 'audit-index.db'), key: Buffer.from(AUDIT_KEY) });
  if (!verified.ok) {
    problem(round, `audit:verify failed at line ${verified.line}: ${verified.problem}`);
    return;
  }

  const events = new Map<string, string[]>();
  for (const line of readFileSync(auditFile, 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line) as { audit_id: string; event: string };
    events.set(r.audit_id, [...(events.get(r.audit_id) ?? []), r.event]);
  }
  for (const a of acked) {
    const seen = events.get(a.auditId) ?? [];
    const first = a.kind === 'approve' ? 'approval' : 'decision';
    if (!seen.includes(first) || !seen.includes('outcome')) problem(round, `${a.status} ${a.auditId} acknowledged but its records are [${seen.join(', ')}]`);
  }

  const pending = acked.filter((a) => a.status === 202);
  for (const a of pending) {
    const res = await fetch(`${base}/api/approvals/${a.approvalId}`, { headers: asApprover });
    if (res.status !== 200) problem(round, `202 ${a.approvalId} has no approval record (HTTP ${res.status})`);
  }
  // A few still-pending ones must approve exactly once.
  const stillPending = (await (await fetch(`${base}/api/approvals?status=pending&limit=3`, { headers: asApprover })).json()) as { approvals: Array<{ approval_id: string }> };
  for (const { approval_id } of stillPending.approvals) {
    const first = await approve(approval_id);
    const second = await approve(approval_id);
    if (first.status !== 200 || second.status !== 409) problem(round, `approving ${approval_id} twice gave ${first.status}, ${second.status}`);
  }

  const outDir = join(workspace, 'out');
  for (const name of readdirSync(outDir, { withFileTypes: true }).filter((d) => d.isFile() && !d.name.endsWith('.tmp')).map((d) => d.name)) {
    const text = readFileSync(join(outDir, name), 'utf8');
    const match = /^len=(\d+)\n(x*)\nEND\n$/.exec(text);
    if (!match || match[2].length !== Number(match[1])) problem(round, `workspace file out/${name} is half-written (${text.length} bytes)`);
  }
}

async function main(): Promise<void> {
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  mkdirSync(join(workspace, 'out'));
  let child = startGateway();
  await waitReady();
  let totalAcked = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const graceful = round === ROUNDS;
    const acked: Acked[] = [];
    const stop = { now: false };
    const running = load(acked, stop);
    await sleep(DURATION_MS * (0.3 + 0.7 * Math.random()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(graceful ? 'SIGTERM' : 'SIGKILL');
    const code = await exited;
    stop.now = true;
    await running;
    if (graceful && code !== 0) problem(round, `SIGTERM exit code ${code}, expected 0`);
    child = startGateway();
    await waitReady();
    await check(round, acked);
    totalAcked += acked.length;
    const twoHundreds = acked.filter((a) => a.status === 200).length;
    process.stdout.write(
      `round ${round}: ${graceful ? 'SIGTERM' : 'kill -9'} after load, ${acked.length} acknowledged (${twoHundreds} executed, ${acked.length - twoHundreds} pending approval), exit ${code}, ${problems.length} problems so far\n`,
    );
  }
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  if (!values.keep) rmSync(root, { recursive: true, force: true });
  if (problems.length > 0) {
    process.stdout.write(`${problems.join('\n')}\ncrash test FAILED: ${problems.length} problems\n`);
    process.exit(1);
  }
  process.stdout.write(`crash test passed: ${ROUNDS - 1} kill -9 rounds and 1 SIGTERM round, ${totalAcked} acknowledged calls all on record\n`);
}

main().catch((err: Error) => {
  process.stdout.write(`crash test FAILED: ${err.message}\n`);
  process.exit(1);
});
