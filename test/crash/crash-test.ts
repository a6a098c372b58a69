// npm run test:crash [-- --duration 4 --rounds 6 --concurrency 64] [--instances 2]
// Starts the built gateway as a child process, drives concurrent agents (reads, writes that go to
// approval, denied calls) and an approver, kills it with SIGKILL mid-load (and, last, SIGTERM),
// restarts it on the same data dir, and checks that nothing it acknowledged was lost.
// --instances 2: two gateways on one PostgreSQL database and one Redis (TEST_POSTGRES_URL,
// TEST_REDIS_URL's host with DB 10) behind a round-robin client; each round kills one of them, the
// other must keep serving, and approvals, audit chains and replay keys are checked in the shared stores.
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from '../support/free-port';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { Pool } from 'pg';
import { signRequestHeaders } from '../../src/auth/signature';
import { verifyAuditDatabase, verifyAuditLog } from '../../src/audit/audit-verify';
import { createTestDatabase, dropTestDatabase, postgresReachable, redisReachable, TEST_REDIS_URL } from '../support/services';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '6' },
    concurrency: { type: 'string', default: '64' },
    keep: { type: 'boolean', default: false },
    instances: { type: 'string', default: '1' },
  },
});
const INSTANCES = Number(values.instances);
if (INSTANCES !== 1 && INSTANCES !== 2) throw new Error('--instances must be 1 or 2');
const SHARED = INSTANCES === 2;
const REDIS_URL = TEST_REDIS_URL.replace(/\/\d*$/, '/10');
const DURATION_MS = Number(values.duration) * 1000;
const ROUNDS = Math.max(2, Number(values.rounds));
const CONCURRENCY = Number(values.concurrency);
const AGENTS = Array.from({ length: 8 }, (_, i) => ({ id: `crash_agent_${i}`, secret: `crash-secret-${i}-${randomBytes(8).toString('hex')}` }));
const APPROVER_TOKEN = `approver-${randomBytes(8).toString('hex')}`;
const AUDIT_KEY = randomBytes(32).toString('hex');

const root = mkdtempSync(join(tmpdir(), 'agw-crash-'));
const workspace = join(root, 'workspace');
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
  - { id: crash_approver, token_sha256: "${createHash('sha256').update(APPROVER_TOKEN).digest('hex')}", audit: true }
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
  /** The instance that answered, and when. */
  node: Instance;
  at: number;
}

/** One gateway process: its own port, data dir and instance id; the stores are shared with --instances 2. */
interface Instance {
  name: string;
  port: number;
  base: string;
  dataDir: string;
  child?: ChildProcess;
}

const problems: string[] = [];
const problem = (round: number, text: string) => problems.push(`round ${round}: ${text}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const nodes: Instance[] = [];
/** With --instances 2: the shared PostgreSQL database. */
let databaseUrl: string | undefined;
let turn = 0;
/** Round-robin over the instances, as a load balancer without health checks would send. */
const nextNode = () => nodes[turn++ % nodes.length];

function startGateway(node: Instance): ChildProcess {
  const shared = databaseUrl ? { GATEWAY_DATABASE_URL: databaseUrl, GATEWAY_REDIS_URL: REDIS_URL, GATEWAY_INSTANCE_ID: `crash-${node.name}` } : {};
  const child = spawn(process.execPath, ['dist/main.js'], {
    env: {
      ...process.env,
      PORT: String(node.port),
      HOST: '127.0.0.1',
      GATEWAY_CONFIG: configFile,
      GATEWAY_DATA_DIR: node.dataDir,
      GATEWAY_WORKSPACE: workspace,
      GATEWAY_AUDIT_KEY: AUDIT_KEY,
      LOG_LEVEL: 'error',
      ...shared,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  node.child = child;
  return child;
}

async function waitReady(node: Instance): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${node.base}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`the gateway ${node.name} did not become ready`);
}

let sequence = 0;
async function call(node: Instance, agent: (typeof AGENTS)[number], tool: string, args: unknown): Promise<Response> {
  const path = '/api/tools/call';
  const body = JSON.stringify({ agent_id: agent.id, agent_version: '1.0.0', request_id: `crash_${process.pid}_${++sequence}`, tool, arguments: args });
  return fetch(node.base + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...signRequestHeaders(agent.id, { alg: 'hmac-sha256', secret: agent.secret }, 'POST', path, body) },
    body,
  });
}

const asApprover = { Authorization: `Bearer ${APPROVER_TOKEN}` };
async function approve(node: Instance, approvalId: string): Promise<Response> {
  return fetch(`${node.base}/approve`, {
    method: 'POST',
    headers: { ...asApprover, 'Content-Type': 'application/json' },
    body: JSON.stringify({ approval_id: approvalId, approved: true }),
  });
}

function payload(n: number): string {
  return `len=${n}\n${'x'.repeat(n)}\nEND\n`;
}

async function load(acked: Acked[], stop: { now: boolean }): Promise<void> {
  const agentLoop = async (w: number) => {
    const agent = AGENTS[w % AGENTS.length];
    while (!stop.now) {
      const r = Math.random();
      const node = nextNode();
      try {
        let res: Response;
        if (r < 0.55) res = await call(node, agent, Math.random() < 0.5 ? 'read_file' : 'list_dir', { path: Math.random() < 0.5 ? 'hello.txt' : '.' });
        else if (r < 0.8)
          res = await call(node, agent, 'write_file', { path: `out/${w}-${sequence % 7}.txt`, content: payload(Math.floor(Math.random() * 200_000)) });
        else res = await call(node, agent, 'delete_everything', {});
        const body = (await res.json()) as { audit_id: string; approval_id?: string };
        if (res.status < 300) acked.push({ status: res.status, auditId: body.audit_id, approvalId: body.approval_id, kind: 'call', node, at: Date.now() });
      } catch {
        // the gateway went away mid-request: not acknowledged
      }
    }
  };
  const approverLoop = async () => {
    while (!stop.now) {
      try {
        const list = (await (await fetch(`${nextNode().base}/api/approvals?status=pending&limit=20`, { headers: asApprover })).json()) as {
          approvals: Array<{ approval_id: string }>;
        };
        for (const { approval_id } of list.approvals.slice(0, 5)) {
          const node = nextNode();
          const res = await approve(node, approval_id);
          const body = (await res.json()) as { audit_id: string };
          if (res.status < 300) acked.push({ status: res.status, auditId: body.audit_id, approvalId: approval_id, kind: 'approve', node, at: Date.now() });
        }
      } catch {
        // gone
      }
    }
  };
  await Promise.all([...Array.from({ length: CONCURRENCY }, (_, w) => agentLoop(w)), approverLoop(), approverLoop()]);
}

/** Every audit record's events by audit_id, once the chains verify; undefined (and a problem) when one does not. */
async function auditEvents(round: number): Promise<Map<string, string[]> | undefined> {
  const events = new Map<string, string[]>();
  const add = (line: string) => {
    const r = JSON.parse(line) as { audit_id: string; event: string };
    events.set(r.audit_id, [...(events.get(r.audit_id) ?? []), r.event]);
  };
  if (databaseUrl) {
    const pool = new Pool({ connectionString: databaseUrl });
    try {
      const { chains } = await verifyAuditDatabase(pool, { key: Buffer.from(AUDIT_KEY) });
      const broken = chains.filter((c) => !c.ok);
      if (chains.length !== nodes.length) problem(round, `${chains.length} audit chains in the database, expected ${nodes.length}`);
      for (const c of broken) if (!c.ok) problem(round, `audit:verify --database failed for ${c.instance_id} at seq ${c.seq}: ${c.problem}`);
      if (broken.length > 0) return undefined;
      const { rows } = await pool.query<{ line: string }>('SELECT line FROM audit_records');
      rows.forEach((row) => add(row.line));
    } finally {
      await pool.end();
    }
    return events;
  }
  const [{ dataDir }] = nodes;
  const auditFile = join(dataDir, 'audit.jsonl');
  const verified = await verifyAuditLog(auditFile, { indexFile: join(dataDir, 'audit-index.db'), key: Buffer.from(AUDIT_KEY) });
  if (!verified.ok) {
    problem(round, `audit:verify failed at line ${verified.line}: ${verified.problem}`);
    return undefined;
  }
  for (const line of readFileSync(auditFile, 'utf8').split('\n')) if (line) add(line);
  return events;
}

async function check(round: number, acked: Acked[]): Promise<void> {
  const events = await auditEvents(round);
  if (!events) return;
  for (const a of acked) {
    const seen = events.get(a.auditId) ?? [];
    const first = a.kind === 'approve' ? 'approval' : 'decision';
    if (!seen.includes(first) || !seen.includes('outcome')) problem(round, `${a.status} ${a.auditId} acknowledged but its records are [${seen.join(', ')}]`);
  }

  const pending = acked.filter((a) => a.status === 202);
  for (const a of pending) {
    const res = await fetch(`${nextNode().base}/api/approvals/${a.approvalId}`, { headers: asApprover });
    if (res.status !== 200) problem(round, `202 ${a.approvalId} has no approval record (HTTP ${res.status})`);
  }
  // A few still-pending ones must approve exactly once (with two instances: once on each).
  const stillPending = (await (await fetch(`${nextNode().base}/api/approvals?status=pending&limit=3`, { headers: asApprover })).json()) as {
    approvals: Array<{ approval_id: string }>;
  };
  for (const { approval_id } of stillPending.approvals) {
    const first = await approve(nextNode(), approval_id);
    const second = await approve(nextNode(), approval_id);
    if (first.status !== 200 || second.status !== 409) problem(round, `approving ${approval_id} twice gave ${first.status}, ${second.status}`);
  }
  if (databaseUrl) {
    // The restarted instance failed its own interrupted calls at start; the survivor finished its own.
    const approved = (await (await fetch(`${nodes[0].base}/api/approvals?status=approved&limit=100`, { headers: asApprover })).json()) as {
      approvals: unknown[];
    };
    if (approved.approvals.length > 0) problem(round, `${approved.approvals.length} approval(s) still approved without an outcome after the restart`);
  }

  const outDir = join(workspace, 'out');
  for (const name of readdirSync(outDir, { withFileTypes: true })
    .filter((d) => d.isFile() && !d.name.endsWith('.tmp'))
    .map((d) => d.name)) {
    const text = readFileSync(join(outDir, name), 'utf8');
    const match = /^len=(\d+)\n(x*)\nEND\n$/.exec(text);
    if (!match || match[2].length !== Number(match[1])) problem(round, `workspace file out/${name} is half-written (${text.length} bytes)`);
  }
}

/** --instances 2: a fresh PostgreSQL database and an empty Redis DB, or a clear refusal. */
async function sharedStores(): Promise<void> {
  if (!postgresReachable() || !redisReachable(REDIS_URL)) throw new Error(`--instances 2 needs PostgreSQL (TEST_POSTGRES_URL) and Redis (${REDIS_URL})`);
  databaseUrl = await createTestDatabase();
  const redis = new Redis(REDIS_URL);
  await redis.flushdb();
  redis.disconnect();
}

async function main(): Promise<void> {
  if (SHARED) await sharedStores();
  for (let i = 0; i < INSTANCES; i++) {
    const port = await freePort();
    const name = SHARED ? String.fromCharCode(97 + i) : 'gateway';
    nodes.push({ name, port, base: `http://127.0.0.1:${port}`, dataDir: SHARED ? join(root, `data-${name}`) : join(root, 'data') });
  }
  mkdirSync(join(workspace, 'out'));
  nodes.forEach(startGateway);
  for (const node of nodes) await waitReady(node);
  let totalAcked = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const graceful = round === ROUNDS;
    const victim = nodes[(round - 1) % nodes.length];
    const acked: Acked[] = [];
    const stop = { now: false };
    const running = load(acked, stop);
    await sleep(DURATION_MS * (0.3 + 0.7 * Math.random()));
    const child = victim.child!;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const killedAt = Date.now();
    child.kill(graceful ? 'SIGTERM' : 'SIGKILL');
    const code = await exited;
    // With two instances the other one serves on alone for a while.
    if (SHARED) await sleep(DURATION_MS * 0.3);
    stop.now = true;
    await running;
    if (graceful && code !== 0) problem(round, `SIGTERM exit code ${code}, expected 0`);
    const servedAlone = acked.filter((a) => a.node !== victim && a.at > killedAt).length;
    if (SHARED && servedAlone === 0) problem(round, `instance ${nodes.find((n) => n !== victim)!.name} acknowledged nothing while ${victim.name} was down`);
    startGateway(victim);
    await waitReady(victim);
    await check(round, acked);
    totalAcked += acked.length;
    const twoHundreds = acked.filter((a) => a.status === 200).length;
    process.stdout.write(
      `round ${round}: ${graceful ? 'SIGTERM' : 'kill -9'}${SHARED ? ` of instance ${victim.name}` : ''} after load, ${acked.length} acknowledged (${twoHundreds} executed, ${acked.length - twoHundreds} pending approval)${SHARED ? `, ${servedAlone} by the other while it was down` : ''}, exit ${code}, ${problems.length} problems so far\n`,
    );
  }
  for (const node of nodes) {
    const exited = new Promise((resolve) => node.child!.once('exit', resolve));
    node.child!.kill('SIGTERM');
    await exited;
  }
  if (databaseUrl && !values.keep) {
    await dropTestDatabase(databaseUrl);
    const redis = new Redis(REDIS_URL);
    await redis.flushdb();
    redis.disconnect();
  }
  if (!values.keep) rmSync(root, { recursive: true, force: true });
  if (problems.length > 0) {
    process.stdout.write(`${problems.join('\n')}\ncrash test FAILED: ${problems.length} problems\n`);
    process.exit(1);
  }
  const mode = SHARED ? ' with 2 instances on PostgreSQL + Redis' : '';
  process.stdout.write(`crash test passed${mode}: ${ROUNDS - 1} kill -9 rounds and 1 SIGTERM round, ${totalAcked} acknowledged calls all on record\n`);
}

main().catch((err: Error) => {
  process.stdout.write(`crash test FAILED: ${err.message}\n`);
  process.exit(1);
});
