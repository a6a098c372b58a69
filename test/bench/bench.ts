// npm run bench [-- --quick] [--rounds 3] [--out bench.json] [--cpu-prof] [--skip-scaling] [--stores postgres] [--only mcp-proxy-path]
// The gateway's overhead: the real gateway (built, audit on) against a bare NestJS app and a plain
// node:http server doing the same file read, side by side, with autocannon, and the same read through
// the MCP door. See README, Performance. `--stores postgres` also runs the same gateway on PostgreSQL
// + Redis (TEST_POSTGRES_URL, a fresh database; TEST_REDIS_URL's host, DB 11) beside it, round for round.
// Then the section "MCP proxy path" (mcp-proxy-path.ts): the MCP door beside supergateway and mcp-proxy
// on one stdio upstream. `--only mcp-proxy-path` runs that section alone (`--cpu-prof` then profiles its
// gateway, `--paths` and `--concurrency` narrow it: `--paths "gateway MCP door" --concurrency 16`;
// `--compare-dist dist-before` also runs a saved build beside dist/, round for round, for an A/B).
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../support/free-port';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import Redis from 'ioredis';
import { AuditIndex, IndexRow } from '../../src/audit/audit-index';
import { GENESIS_HASH, sealRecord } from '../../src/audit/audit-record';
import { signRequestHeaders } from '../../src/auth/signature';
import { createTestDatabase, dropTestDatabase, TEST_REDIS_URL } from '../support/services';
import { spawnGateway, stopProcess, waitFor } from './gateway-process';
import { PathName, PATHS, runMcpProxyPath } from './mcp-proxy-path';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    'skip-scaling': { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    stores: { type: 'string', default: 'embedded' },
    only: { type: 'string' },
    paths: { type: 'string' },
    concurrency: { type: 'string' },
    'compare-dist': { type: 'string' },
  },
});
if (values.only !== undefined && values.only !== 'mcp-proxy-path') throw new Error('--only takes mcp-proxy-path');
if (values.stores !== 'embedded' && values.stores !== 'postgres') throw new Error('--stores must be embedded or postgres');
const SHARED_STORES = values.stores === 'postgres';
const SHARED_REDIS_URL = TEST_REDIS_URL.replace(/\/\d*$/, '/11');
// The three servers take turns, round after round, and each point is the median of its rounds: on
// a shared machine a slow minute then lands on all three instead of deciding the ratio.
const ROUNDS = Math.max(1, Number(values.rounds));
// Upper bound of any server's req/s here, to size the pool of pre-signed requests.
const MAX_RATE = 6000;
const DURATION_S = values.quick ? 3 : 10;
const WARMUP_S = values.quick ? 1 : 3;
const CONCURRENCIES = [1, 16, 64];
const SECRET = 'bench-agent-secret-0123456789';
const MCP_TOKEN = 'bench-mcp-token-0123456789';
const MCP_TOKEN_SHA256 = createHash('sha256').update(MCP_TOKEN).digest('hex');
/**
 * A tools/call of read_file through the MCP door, byte for byte as the SDK's v2 client sends it
 * (protocol 2026-07-28: stateless, one POST per call, its _meta envelope; captured from the client).
 * No request_id in _meta, so the gateway names each call itself and none is a replay.
 */
const MCP_CALL: autocannon.Request = {
  method: 'POST',
  path: '/mcp',
  headers: {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    authorization: `Bearer ${MCP_TOKEN}`,
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': 'tools/call',
    'mcp-name': 'read_file',
  },
  body: JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: {
      name: 'read_file',
      arguments: { path: '/workspace/hello.txt' },
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' },
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    },
  }),
};

interface Point {
  server: string;
  connections: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  non_2xx: number;
}

const root = mkdtempSync(join(tmpdir(), 'agw-bench-'));
const workspace = join(root, 'workspace');
mkdirSync(workspace);
const helloFile = join(workspace, 'hello.txt');
writeFileSync(helloFile, 'hello from the workspace\n');

function gatewayConfig(tools: number, agents: number): string {
  const pathArg = '{ type: object, required: [path], additionalProperties: false, properties: { path: { type: string, minLength: 1 } } }';
  const lines = [
    'settings: { signature_tolerance_s: 3600, idempotency_ttl_s: 7200, unauthenticated_rate_limit: { limit: 1000000, ttl_s: 60 } }',
    'roles: { reader: { rate_limit: { limit: 100000000, ttl_s: 60 } } }',
    'agents:',
    ...Array.from(
      { length: agents },
      (_, i) =>
        `  - { id: bench_agent_${i}, role: reader, key: { alg: hmac-sha256, secret: "${SECRET}-${i}" }${i === 0 ? `, mcp_tokens: [{ token_sha256: "${MCP_TOKEN_SHA256}" }]` : ''} }`,
    ),
    'tools:',
    `  read_file: { kind: fs.read, roles: [reader], input_schema: ${pathArg} }`,
    ...Array.from({ length: tools - 1 }, (_, i) => `  tool_${i}: { kind: fs.read, roles: [reader], input_schema: ${pathArg} }`),
  ];
  return `${lines.join('\n')}\n`;
}

interface Running {
  child: ChildProcess;
  port: number;
  startupMs: number;
}

async function startGateway(tag: string, tools = 10, agents = 10, dataDir = join(root, `data-${tag}`), stores: Record<string, string> = {}): Promise<Running> {
  const configFile = join(root, `gateway-${tag}.yaml`);
  writeFileSync(configFile, gatewayConfig(tools, agents));
  const port = await freePort();
  const started = performance.now();
  const nodeArgs = values['cpu-prof'] && tag === 'main' ? ['--cpu-prof', '--cpu-prof-dir', 'bench-profiles'] : [];
  const child = spawnGateway({ port, configFile, dataDir, workspace, nodeArgs, env: stores });
  await waitFor(`http://127.0.0.1:${port}/readyz`);
  return { child, port, startupMs: performance.now() - started };
}

async function startComparison(mode: 'baseline' | 'floor'): Promise<Running> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, ['node_modules/tsx/dist/cli.mjs', 'test/bench/servers.ts', mode, String(port), helloFile], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitFor(`http://127.0.0.1:${port}/`);
  return { child, port, startupMs: performance.now() - started };
}

async function stop(running: Running): Promise<void> {
  await stopProcess(running.child);
}

/** Signed bodies made before the timed run, one per request: the load generator only sends. */
interface SignedPool {
  items: Array<{ body: string; headers: Record<string, string> }>;
  /** Shared by every run on one gateway, so no request_id is ever sent twice (that would be a replay). */
  next: number;
}

function presign(count: number, agents: number): SignedPool {
  const out = new Array(count);
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < count; i++) {
    const a = i % agents;
    const agent = `bench_agent_${a}`;
    const body = JSON.stringify({
      agent_id: agent,
      agent_version: '1.0.0',
      request_id: `bench_${now}_${i}`,
      tool: 'read_file',
      arguments: { path: '/workspace/hello.txt' },
    });
    out[i] = {
      body,
      headers: {
        'content-type': 'application/json',
        ...signRequestHeaders(agent, { alg: 'hmac-sha256', secret: `${SECRET}-${a}` }, 'POST', '/api/tools/call', body, now),
      },
    };
  }
  return { items: out, next: 0 };
}

async function measure(server: string, port: number, connections: number, signed?: SignedPool, request?: autocannon.Request): Promise<Point> {
  const run = (duration: number) =>
    autocannon({
      url: `http://127.0.0.1:${port}`,
      connections,
      duration,
      requests: [
        request ?? {
          method: 'POST',
          path: '/api/tools/call',
          headers: { 'content-type': 'application/json' },
          body: '{"tool":"read_file","arguments":{"path":"/workspace/hello.txt"}}',
          ...(signed && {
            setupRequest: (req: autocannon.Request) => {
              if (signed.next >= signed.items.length) throw new Error('the pre-signed pool ran out: raise its size');
              const s = signed.items[signed.next++];
              return { ...req, body: s.body, headers: s.headers };
            },
          }),
        },
      ],
    });
  await run(WARMUP_S);
  const result = await run(DURATION_S);
  return {
    server,
    connections,
    requests_per_s: Math.round(result.requests.average),
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non_2xx: result.non2xx,
  };
}

function table(points: Array<Point & { rounds_rps?: number[] }>): string {
  const rows = points.map(
    (p) =>
      `| ${p.server.padEnd(28)} | ${String(p.connections).padStart(3)} | ${String(p.requests_per_s).padStart(7)} | ${p.p50_ms.toFixed(2).padStart(7)} | ${p.p99_ms.toFixed(2).padStart(7)} | ${String(p.errors + p.non_2xx).padStart(6)} |${p.rounds_rps ? ` ${p.rounds_rps.join(', ')} |` : ''}`,
  );
  const roundsHeader = points.some((p) => p.rounds_rps) ? ' req/s per round |' : '';
  return [
    `| server                       |   c |   req/s | p50 ms  | p99 ms  | errors |${roundsHeader}`,
    `|---|---|---|---|---|---|${roundsHeader ? '---|' : ''}`,
    ...rows,
  ].join('\n');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One point per server and concurrency: the median of its rounds (errors summed). */
function medianOfRounds(rounds: Point[][]): Array<Point & { rounds_rps: number[] }> {
  return rounds[0].map((first, i) => {
    const same = rounds.map((round) => round[i]);
    return {
      ...first,
      requests_per_s: median(same.map((p) => p.requests_per_s)),
      p50_ms: median(same.map((p) => p.p50_ms)),
      p99_ms: median(same.map((p) => p.p99_ms)),
      errors: same.reduce((n, p) => n + p.errors, 0),
      non_2xx: same.reduce((n, p) => n + p.non_2xx, 0),
      rounds_rps: same.map((p) => p.requests_per_s),
    };
  });
}

/** A chained audit log of about `bytes` with its index, as a long-running gateway leaves it. */
function writeBigAuditLog(dataDir: string, bytes: number): number {
  mkdirSync(dataDir, { recursive: true });
  const fd = openSync(join(dataDir, 'audit.jsonl'), 'w');
  const index = new AuditIndex(join(dataDir, 'audit-index.db'));
  let prev = GENESIS_HASH;
  let offset = 0;
  let seq = 1;
  let rows: IndexRow[] = [];
  const args = { path: '/workspace/hello.txt', note: 'x'.repeat(200) };
  while (offset < bytes) {
    const lines: string[] = [];
    for (let i = 0; i < 5000; i++, seq++) {
      const auditId = `audit_${createHash('md5').update(String(seq)).digest('hex')}`;
      const { line, hash } = sealRecord(
        { audit_id: auditId, event: 'decision', decision: 'allow', agent_id: 'bench_agent_0', tool: 'read_file', request_id: `r${seq}`, arguments: args },
        seq,
        prev,
      );
      lines.push(line);
      rows.push({ seq, audit_id: auditId, request_id: `r${seq}`, agent_id: 'bench_agent_0', hash, offset, length: line.length + 1 });
      offset += line.length + 1;
      prev = hash;
    }
    writeSync(fd, `${lines.join('\n')}\n`);
    index.insertBatch(rows);
    rows = [];
  }
  closeSync(fd);
  index.close();
  return seq - 1;
}

async function main(): Promise<void> {
  const signed = presign((DURATION_S + WARMUP_S) * MAX_RATE * CONCURRENCIES.length * ROUNDS * (SHARED_STORES ? 3 : 2), 10);

  const gateway = await startGateway('main');
  // The same gateway with OpenTelemetry on, every call sampled, its spans sent to a collector stand-in that drops them.
  const spanSink = createServer((req, res) => req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}')));
  await new Promise<void>((resolve) => spanSink.listen(0, '127.0.0.1', resolve));
  const traced = await startGateway('traced', 10, 10, undefined, {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(spanSink.address() as AddressInfo).port}`,
    OTEL_TRACES_SAMPLER: 'always_on',
  });
  const databaseUrl = SHARED_STORES ? await createTestDatabase() : undefined;
  const redis = SHARED_STORES ? new Redis(SHARED_REDIS_URL) : undefined;
  await redis?.flushdb();
  const shared = databaseUrl
    ? await startGateway('shared', 10, 10, undefined, { GATEWAY_DATABASE_URL: databaseUrl, GATEWAY_REDIS_URL: SHARED_REDIS_URL })
    : undefined;
  const baseline = await startComparison('baseline');
  const floor = await startComparison('floor');
  const rounds: Point[][] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round: Point[] = [];
    for (const c of CONCURRENCIES) round.push(await measure('gateway', gateway.port, c, signed));
    for (const c of CONCURRENCIES) round.push(await measure('gateway, tracing on', traced.port, c, signed));
    if (shared) for (const c of CONCURRENCIES) round.push(await measure('gateway, PostgreSQL + Redis', shared.port, c, signed));
    for (const c of CONCURRENCIES) round.push(await measure('gateway, MCP door', gateway.port, c, undefined, MCP_CALL));
    for (const c of CONCURRENCIES) round.push(await measure('baseline (bare NestJS)', baseline.port, c));
    for (const c of CONCURRENCIES) round.push(await measure('floor (node:http)', floor.port, c));
    rounds.push(round);
    process.stderr.write(`round ${r + 1} of ${ROUNDS} done\n`);
  }
  await Promise.all([gateway, traced, baseline, floor, ...(shared ? [shared] : [])].map(stop));
  spanSink.close();
  if (databaseUrl) await dropTestDatabase(databaseUrl);
  await redis?.flushdb();
  redis?.disconnect();
  const points = medianOfRounds(rounds);
  process.stdout.write(`\n${ROUNDS > 1 ? `Median of ${ROUNDS} rounds:\n` : ''}${table(points)}\n`);

  const scaling: Array<Point & { startup_ms: number }> = [];
  let audit: { records: number; bytes: number; startup_ms: number; startup_empty_ms: number } | undefined;
  if (!values['skip-scaling']) {
    for (const [label, tools, agents] of [
      ['10 tools, 10 agents', 10, 10],
      ['10,000 tools, 10 agents', 10_000, 10],
      ['10 tools, 10,000 agents', 10, 10_000],
    ] as const) {
      const gw = await startGateway(label.replace(/\W+/g, '-'), tools, agents);
      scaling.push({
        ...(await measure(`gateway, ${label}`, gw.port, 64, presign((DURATION_S + WARMUP_S) * MAX_RATE, Math.min(agents, 10_000)))),
        startup_ms: Math.round(gw.startupMs),
      });
      await stop(gw);
    }
    process.stdout.write(`\nScaling (c=64):\n${table(scaling)}\n${scaling.map((s) => `  ${s.server}: start-up ${s.startup_ms} ms`).join('\n')}\n`);

    const empty = await startGateway('audit-empty');
    await stop(empty);
    const bigDir = join(root, 'data-audit-big');
    const bytes = values.quick ? 100 * 1024 * 1024 : 1024 * 1024 * 1024;
    const records = writeBigAuditLog(bigDir, bytes);
    const big = await startGateway('audit-big', 10, 10, bigDir);
    await stop(big);
    audit = { records, bytes, startup_ms: Math.round(big.startupMs), startup_empty_ms: Math.round(empty.startupMs) };
    process.stdout.write(
      `\nStart-up with a ${(bytes / 1024 / 1024).toFixed(0)} MiB audit log (${records} records): ${audit.startup_ms} ms (empty log: ${audit.startup_empty_ms} ms)\n`,
    );
  }

  const at = (server: string, c = 64) => points.find((p) => p.server === server && p.connections === c)!;
  const [g, b, f] = [at('gateway'), at('baseline (bare NestJS)'), at('floor (node:http)')];
  const ratio = Math.round((g.requests_per_s / b.requests_per_s) * 100) / 100;
  const tracingRatios = CONCURRENCIES.map((c) => `c=${c} ${(at('gateway, tracing on', c).requests_per_s / at('gateway', c).requests_per_s).toFixed(2)}`).join(
    ', ',
  );
  const mcpRatios = CONCURRENCIES.map((c) => `c=${c} ${(at('gateway, MCP door', c).requests_per_s / at('gateway', c).requests_per_s).toFixed(2)}`).join(', ');
  const s = shared && at('gateway, PostgreSQL + Redis');
  const storesLine = s
    ? `\nPostgreSQL + Redis/embedded stores at c=64: ${(s.requests_per_s / g.requests_per_s).toFixed(2)} (${s.requests_per_s} req/s p99 ${s.p99_ms} ms; embedded ${g.requests_per_s} req/s p99 ${g.p99_ms} ms)`
    : '';
  const line = `gateway/baseline throughput ratio at c=64: ${ratio} (gateway ${g.requests_per_s} req/s p99 ${g.p99_ms} ms; baseline ${b.requests_per_s} req/s p99 ${b.p99_ms} ms; floor ${f.requests_per_s} req/s p99 ${f.p99_ms} ms)\nMCP door/REST door throughput: ${mcpRatios}\nTracing on (sampler 1.0)/off throughput: ${tracingRatios}${storesLine}`;
  rmSync(root, { recursive: true, force: true });
  process.stdout.write(`\n${line}\n`);
  const proxyPath = await mcpProxyPath();
  if (values.out)
    writeFileSync(
      values.out,
      `${JSON.stringify({ ratio, mcp_vs_rest: mcpRatios, summary: line, duration_s: DURATION_S, rounds: ROUNDS, points, all_rounds: rounds, scaling, audit_startup: audit, mcp_proxy_path: proxyPath }, null, 2)}\n`,
    );
}

/** The section "MCP proxy path": the MCP door beside the plain npm MCP proxies, on one stdio upstream. */
async function mcpProxyPath() {
  const paths = values.paths?.split(',').map((p) => p.trim()) as PathName[] | undefined;
  for (const p of paths ?? []) if (!(PATHS as readonly string[]).includes(p)) throw new Error(`--paths: unknown path ${p} (${PATHS.join(', ')})`);
  const result = await runMcpProxyPath({
    quick: values.quick,
    rounds: ROUNDS,
    paths,
    concurrencies: values.concurrency?.split(',').map(Number),
    cpuProfDir: values.only && values['cpu-prof'] ? 'bench-profiles' : undefined,
    compareDist: values['compare-dist'],
  });
  process.stdout.write(`\nMCP proxy path (one stdio upstream, tool echo; the same SDK v2 client; ${ROUNDS} rounds, medians):\n${result.summary}\n`);
  return result;
}

(values.only === 'mcp-proxy-path'
  ? mcpProxyPath().then((result) => {
      if (values.out) writeFileSync(values.out, `${JSON.stringify({ mcp_proxy_path: result }, null, 2)}\n`);
      rmSync(root, { recursive: true, force: true });
    })
  : main()
).catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.message}\n`);
  process.exit(1);
});
