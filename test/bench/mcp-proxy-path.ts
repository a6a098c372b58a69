// The "MCP proxy path" section of `npm run bench` (alone: `npm run bench -- --only mcp-proxy-path [--quick]`).
// One stdio upstream (test/fixtures/mcp-demo-server.js, tool `echo`) reached five ways, each driven by
// the same SDK v2 client (@modelcontextprotocol/client) in closed loops at c=1 and c=16, the paths
// taking turns round after round (medians of the rounds):
//   direct stdio      the client spawns the upstream itself (one process, c calls in flight on it)
//   supergateway      4.0.0, stateful Streamable HTTP → stdio (one child per session; 2025-11-25 sessions)
//   mcp-proxy         6.7.19, Streamable HTTP → stdio (one child, one shared upstream client)
//   gateway MCP door  a `kind: mcp` tool on the built gateway (dist/main.js): bearer token, policy,
//                     a replay key per call (_meta request_id), the chained audit log
//   gateway REST door the same tool, signed POST /api/tools/call (fetch, as the SDK client uses)
//   gateway MCP door [oauth]  the MCP door with an OAuth access token (an ES256 JWT of a local issuer,
//                     its key set cached by the gateway) instead of the static bearer token
//   SDK floor         not a proxy: the official SDK's Streamable HTTP server answering echo itself
//                     (test/fixtures/sdk-floor-server.mjs), what any SDK-based door costs this client before any work
// Every HTTP path gets one client (one connection, one session where the peer keeps sessions) per caller.
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { signRequestHeaders } from '../../src/auth/signature';
import { pinMcpTools } from '../../src/kinds/mcp/mcp-pin';
import { freePort } from '../support/free-port';
import { spawnGateway, stopProcess, waitFor } from './gateway-process';

const FIXTURE = resolve(__dirname, '..', 'fixtures', 'mcp-demo-server.js');
const SECRET = 'bench-agent-secret-0123456789';
const MCP_TOKEN = 'bench-mcp-token-0123456789';
const REQUEST_ID_META_KEY = 'io.agent-gateway/request_id';
const ECHO_TEXT = 'hello from the bench';

export const PATHS = ['direct stdio', 'SDK floor', 'supergateway 4.0.0', 'mcp-proxy 6.7.19', 'gateway MCP door', 'gateway REST door'] as const;
export type PathName = (typeof PATHS)[number] | `${'gateway MCP door' | 'gateway REST door'} [${string}]`;

export interface McpPathOptions {
  quick: boolean;
  rounds: number;
  concurrencies?: number[];
  /** Only these paths (default: all of PATHS). */
  paths?: PathName[];
  /** Start the gateway under `node --cpu-prof` writing into this directory. */
  cpuProfDir?: string;
  /** A/B: also run the gateway built in this directory (a copy of dist/ before a change), its doors labelled with it. */
  compareDist?: string;
}

export interface McpPathPoint {
  path: PathName;
  concurrency: number;
  calls_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
}

type Caller = () => Promise<void>;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(path: PathName, callers: Caller[], warmupMs: number, durationMs: number): Promise<McpPathPoint> {
  const run = async (ms: number, latencies?: number[]) => {
    let errors = 0;
    const end = performance.now() + ms;
    await Promise.all(
      callers.map(async (call) => {
        while (performance.now() < end) {
          const started = performance.now();
          try {
            await call();
            latencies?.push(performance.now() - started);
          } catch (err) {
            if (errors++ === 0) process.stderr.write(`${path}: ${(err as Error).message}\n`);
          }
        }
      }),
    );
    return errors;
  };
  await run(warmupMs);
  const latencies: number[] = [];
  const errors = await run(durationMs, latencies);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN).toFixed(2));
  return { path, concurrency: callers.length, calls_per_s: Math.round(latencies.length / (durationMs / 1000)), p50_ms: at(0.5), p99_ms: at(0.99), errors };
}

/**
 * 'auto' speaks 2026-07-28 to a server that offers it (the gateway, mcp-proxy), else 2025-11-25.
 * supergateway's stateful mode keeps a child per 2025-era session; a 2026-era client (no session)
 * gets a fresh child per request there (about 0.5 s a call), so it is driven in 'legacy' mode.
 */
function newClient(mode: 'auto' | 'legacy' = 'auto'): Client {
  return new Client({ name: 'agw-bench', version: '1' }, { versionNegotiation: { mode } });
}

async function httpClient(url: string, token?: string, mode: 'auto' | 'legacy' = 'auto'): Promise<Client> {
  const client = newClient(mode);
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: token ? { headers: { Authorization: `Bearer ${token}` } } : undefined }));
  return client;
}

let counter = 0;
const nextId = () => `bench_${process.pid}_${Date.now()}_${++counter}`;

function sdkCaller(client: Client, tool: string, withRequestId = false): Caller {
  return async () => {
    const result = await client.callTool({ name: tool, arguments: { text: ECHO_TEXT }, ...(withRequestId && { _meta: { [REQUEST_ID_META_KEY]: nextId() } }) });
    if (result.isError) throw new Error(`isError: ${JSON.stringify(result.content).slice(0, 300)}`);
  };
}

function restCaller(port: number): Caller {
  return async () => {
    const body = JSON.stringify({ agent_id: 'bench_agent', agent_version: '1.0.0', request_id: nextId(), tool: 'echo', arguments: { text: ECHO_TEXT } });
    const headers = {
      'content-type': 'application/json',
      ...signRequestHeaders('bench_agent', { alg: 'hmac-sha256', secret: SECRET }, 'POST', '/api/tools/call', body),
    };
    const res = await fetch(`http://127.0.0.1:${port}/api/tools/call`, { method: 'POST', headers, body });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${res.status} ${text.slice(0, 300)}`);
  };
}

/**
 * A local OAuth issuer for the [oauth] row: its metadata and key set over HTTP on 127.0.0.1, and
 * the access token the bench's clients present (client_id bench-client, minted for the gateway's /mcp).
 */
class BenchIssuer {
  private readonly key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  private readonly server: Server = createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? { issuer: this.issuer, jwks_uri: `${this.issuer}/jwks` }
        : req.url === '/jwks'
          ? { keys: [{ ...this.key.publicKey.export({ format: 'jwk' }), kid: 'bench', alg: 'ES256', use: 'sig' }] }
          : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
  });
  issuer = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  token(resource: string): Promise<string> {
    return new SignJWT({ client_id: 'bench-client', scope: 'tools:call' })
      .setProtectedHeader({ alg: 'ES256', kid: 'bench', typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setSubject('bench-client')
      .setAudience(resource)
      .setIssuedAt()
      .setExpirationTime('2h')
      .sign(this.key.privateKey);
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function gatewayConfig(oauth?: { issuer: string; resource: string }): string {
  const tokenSha = createHash('sha256').update(MCP_TOKEN).digest('hex');
  return `settings: { mcp_resync_s: 3600, signature_tolerance_s: 3600, unauthenticated_rate_limit: { limit: 1000000, ttl_s: 60 } }
roles:
  bench: { rate_limit: { limit: 100000000, ttl_s: 60 } }
agents:
  - id: bench_agent
    role: bench
    key: { alg: hmac-sha256, secret: "${SECRET}" }
    mcp_tokens: [{ token_sha256: "${tokenSha}" }]
${
  oauth
    ? `    oauth_clients: [bench-client]
oauth:
  resource: "${oauth.resource}"
  issuers: [{ issuer: "${oauth.issuer}", allowed_hosts: [127.0.0.1] }]
`
    : ''
}mcp_servers:
  demo: { command: ["${process.execPath}", "${FIXTURE}"] }
tools:
  echo: { kind: mcp, server: demo, tool: echo, roles: [bench] }
`;
}

/** The upstream on its own, as a child of a peer: the same argv everywhere. */
const upstreamArgv = [process.execPath, FIXTURE];
const bin = (name: string) => resolve(__dirname, '..', '..', 'node_modules', '.bin', name);

interface Path {
  name: PathName;
  /** Callers per concurrency, made once and reused round after round. */
  callers: Map<number, Caller[]>;
}

export async function runMcpProxyPath(options: McpPathOptions): Promise<{ points: McpPathPoint[]; rounds: McpPathPoint[][]; summary: string }> {
  const concurrencies = options.concurrencies ?? [1, 16];
  const wanted = new Set<PathName>(options.paths ?? PATHS);
  const durationMs = options.quick ? 2000 : 5000;
  const warmupMs = options.quick ? 500 : 1000;
  const root = mkdtempSync(join(tmpdir(), 'agw-mcp-path-'));
  const children: ChildProcess[] = [];
  const clients: Client[] = [];
  const paths: Path[] = [];
  let stopIssuer = () => Promise.resolve();
  const callersFor = async (name: PathName, make: (c: number) => Promise<Caller[]>) => {
    const callers = new Map<number, Caller[]>();
    for (const c of concurrencies) callers.set(c, await make(c));
    paths.push({ name, callers });
  };
  try {
    if (wanted.has('direct stdio')) {
      const client = newClient();
      await client.connect(new StdioClientTransport({ command: upstreamArgv[0], args: upstreamArgv.slice(1), stderr: 'ignore' }));
      clients.push(client);
      await callersFor('direct stdio', async (c) => Array.from({ length: c }, () => sdkCaller(client, 'echo')));
    }
    if (wanted.has('SDK floor')) {
      const port = await freePort();
      children.push(
        spawn(process.execPath, [resolve(__dirname, '..', 'fixtures', 'sdk-floor-server.mjs'), String(port)], { stdio: ['ignore', 'ignore', 'inherit'] }),
      );
      await waitFor(`http://127.0.0.1:${port}/healthz`);
      await callersFor('SDK floor', async (c) => {
        const made = await Promise.all(Array.from({ length: c }, () => httpClient(`http://127.0.0.1:${port}/mcp`)));
        clients.push(...made);
        return made.map((cl) => sdkCaller(cl, 'echo'));
      });
    }
    if (wanted.has('supergateway 4.0.0')) {
      const port = await freePort();
      const child = spawn(
        bin('supergateway'),
        [
          '--stdio',
          upstreamArgv.map((a) => JSON.stringify(a)).join(' '),
          '--outputTransport',
          'streamableHttp',
          '--stateful',
          '--port',
          String(port),
          '--logLevel',
          'none',
          '--healthEndpoint',
          '/healthz',
        ],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      children.push(child);
      await waitFor(`http://127.0.0.1:${port}/healthz`);
      await callersFor('supergateway 4.0.0', async (c) => {
        const made = await Promise.all(Array.from({ length: c }, () => httpClient(`http://127.0.0.1:${port}/mcp`, undefined, 'legacy')));
        clients.push(...made);
        return made.map((cl) => sdkCaller(cl, 'echo'));
      });
    }
    if (wanted.has('mcp-proxy 6.7.19')) {
      const port = await freePort();
      const child = spawn(bin('mcp-proxy'), ['--port', String(port), '--host', '127.0.0.1', '--server', 'stream', '--', ...upstreamArgv], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      children.push(child);
      await waitFor(`http://127.0.0.1:${port}/ping`);
      await callersFor('mcp-proxy 6.7.19', async (c) => {
        const made = await Promise.all(Array.from({ length: c }, () => httpClient(`http://127.0.0.1:${port}/mcp`)));
        clients.push(...made);
        return made.map((cl) => sdkCaller(cl, 'echo'));
      });
    }
    const issuer = wanted.has('gateway MCP door') ? await new BenchIssuer().start() : undefined;
    if (issuer) stopIssuer = () => issuer.stop();
    const gateway = async (dist: string, label: string) => {
      const dir = join(root, `gw${label}`.replace(/\W+/g, '-'));
      mkdirSync(join(dir, 'workspace'), { recursive: true });
      const configFile = join(dir, 'gateway.yaml');
      const port = await freePort();
      const resource = `http://127.0.0.1:${port}/mcp`;
      writeFileSync(configFile, gatewayConfig(issuer && { issuer: issuer.issuer, resource }));
      const env = { ...process.env, GATEWAY_CONFIG: configFile };
      const report = await pinMcpTools(env);
      if (!report.complete) throw new Error(`mcp:pin failed: ${report.lines.join('; ')}`);
      const nodeArgs = options.cpuProfDir && !label ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : [];
      const child = spawnGateway({ port, configFile, dataDir: join(dir, 'data'), workspace: join(dir, 'workspace'), dist, nodeArgs, env });
      children.push(child);
      await waitFor(`http://127.0.0.1:${port}/readyz`);
      if (wanted.has('gateway MCP door')) {
        await callersFor(`gateway MCP door${label}` as PathName, async (c) => {
          const made = await Promise.all(Array.from({ length: c }, () => httpClient(`http://127.0.0.1:${port}/mcp`, MCP_TOKEN)));
          clients.push(...made);
          return made.map((cl) => sdkCaller(cl, 'echo', true));
        });
        if (issuer && !label) {
          const token = await issuer.token(resource);
          await callersFor('gateway MCP door [oauth]', async (c) => {
            const made = await Promise.all(Array.from({ length: c }, () => httpClient(resource, token)));
            clients.push(...made);
            return made.map((cl) => sdkCaller(cl, 'echo', true));
          });
        }
      }
      if (wanted.has('gateway REST door'))
        await callersFor(`gateway REST door${label}` as PathName, async (c) => Array.from({ length: c }, () => restCaller(port)));
    };
    if (wanted.has('gateway MCP door') || wanted.has('gateway REST door')) {
      await gateway('dist', '');
      if (options.compareDist) await gateway(options.compareDist, ` [${options.compareDist}]`);
    }
    const order = (name: PathName) => PATHS.findIndex((p) => name.startsWith(p));
    paths.sort((a, b) => order(a.name) - order(b.name) || a.name.length - b.name.length);

    const rounds: McpPathPoint[][] = [];
    for (let r = 0; r < options.rounds; r++) {
      const round: McpPathPoint[] = [];
      for (const c of concurrencies) for (const p of paths) round.push(await measure(p.name, p.callers.get(c)!, warmupMs, durationMs));
      rounds.push(round);
      process.stderr.write(`mcp proxy path: round ${r + 1} of ${options.rounds} done\n`);
    }
    const points = rounds[0].map((first, i) => {
      const same = rounds.map((round) => round[i]);
      return {
        ...first,
        calls_per_s: median(same.map((p) => p.calls_per_s)),
        p50_ms: median(same.map((p) => p.p50_ms)),
        p99_ms: median(same.map((p) => p.p99_ms)),
        errors: same.reduce((n, p) => n + p.errors, 0),
        rounds_cps: same.map((p) => p.calls_per_s),
      };
    });
    return { points, rounds, summary: summarize(points, rounds, concurrencies) };
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await Promise.all(children.map(stopProcess));
    await stopIssuer();
    rmSync(root, { recursive: true, force: true });
  }
}

function summarize(points: Array<McpPathPoint & { rounds_cps?: number[] }>, rounds: McpPathPoint[][], concurrencies: number[]): string {
  const lines = [
    '| path | c | calls/s | p50 ms | p99 ms | errors | calls/s per round |',
    '|---|---|---|---|---|---|---|',
    ...points.map(
      (p) =>
        `| ${p.path} | ${p.concurrency} | ${p.calls_per_s} | ${p.p50_ms.toFixed(2)} | ${p.p99_ms.toFixed(2)} | ${p.errors} | ${p.rounds_cps?.join(', ') ?? ''} |`,
    ),
  ];
  // Ratios: the median over rounds of each round's own ratio (both sides measured minutes apart at most).
  const ratio = (a: PathName, b: PathName, c: number) => {
    const per = rounds.map((round) => {
      const x = round.find((p) => p.path === a && p.concurrency === c);
      const y = round.find((p) => p.path === b && p.concurrency === c);
      return x && y && y.calls_per_s > 0 ? x.calls_per_s / y.calls_per_s : undefined;
    });
    if (per.some((v) => v === undefined)) return undefined;
    return median(per as number[]);
  };
  const out: string[] = [];
  const compared = [...new Set(points.map((p) => /\[(.*)\]$/.exec(p.path)?.[1]).filter((d) => d !== undefined && d !== 'oauth'))];
  for (const [a, b] of [
    ...compared.flatMap((d) => [
      ['gateway MCP door', `gateway MCP door [${d}]`],
      ['gateway REST door', `gateway REST door [${d}]`],
    ]),
    ['gateway MCP door [oauth]', 'gateway MCP door'],
    ['gateway MCP door', 'mcp-proxy 6.7.19'],
    ['gateway MCP door', 'supergateway 4.0.0'],
    ['gateway MCP door', 'gateway REST door'],
    ['gateway REST door', 'mcp-proxy 6.7.19'],
    ['SDK floor', 'mcp-proxy 6.7.19'],
  ] as Array<[PathName, PathName]>) {
    const rs = concurrencies.map((c) => [c, ratio(a, b, c)] as const).filter(([, v]) => v !== undefined);
    if (rs.length) out.push(`${a} / ${b}: ${rs.map(([c, v]) => `c=${c} ${v!.toFixed(2)}`).join(', ')}`);
  }
  const direct = points.find((p) => p.path === 'direct stdio' && p.concurrency === 1);
  if (direct) {
    for (const p of points.filter((q) => q.concurrency === 1 && q.path !== 'direct stdio'))
      out.push(`added latency at c=1 p50, ${p.path}: +${(p.p50_ms - direct.p50_ms).toFixed(2)} ms over the direct call`);
  }
  return `${lines.join('\n')}\n\n${out.join('\n')}`;
}
