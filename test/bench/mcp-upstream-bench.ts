// npm run -s build && npx tsx test/bench/mcp-upstream-bench.ts [--duration 5]
// The overhead of the mcp tool kind: the same upstream MCP server (the SDK's server
// over Streamable HTTP, in its own process) called directly with the SDK's v2 client, and through
// the built gateway (dist/main.js, audit on), by its MCP door (the same SDK client) and its REST
// door (signed requests), at 1 and 16 concurrent callers. One run each; see README, Performance.
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { signRequestHeaders } from '../../src/auth/signature';
import { pinMcpTools } from '../../src/kinds/mcp/mcp-pin';
import { McpHttpUpstream } from '../fixtures/mcp-http-upstream';
import { freePort } from '../support/free-port';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '5' }, 'serve-upstream': { type: 'string' } } });

const CONCURRENCIES = [1, 16];
const DURATION_MS = Number(values.duration) * 1000;
const WARMUP_MS = 1000;
const SECRET = 'bench-agent-secret-0123456789';
const MCP_TOKEN = 'bench-mcp-token-0123456789';
const UPSTREAM_TOKEN = 'bench-upstream-token-0123456789';

interface Point {
  path: string;
  concurrency: number;
  calls_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
}

/** One caller: a function that makes one call and throws if it did not succeed. */
type Caller = () => Promise<void>;

async function measure(path: string, callers: Caller[]): Promise<Point> {
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
          } catch {
            errors += 1;
          }
        }
      }),
    );
    return errors;
  };
  await run(WARMUP_MS);
  const latencies: number[] = [];
  const errors = await run(DURATION_MS, latencies);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN).toFixed(2));
  return { path, concurrency: callers.length, calls_per_s: Math.round(latencies.length / (DURATION_MS / 1000)), p50_ms: at(0.5), p99_ms: at(0.99), errors };
}

async function sdkClient(url: string, token?: string): Promise<Client> {
  const client = new Client({ name: 'mcp-upstream-bench', version: '1' }, { versionNegotiation: { mode: 'auto' } });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: token ? { headers: { Authorization: `Bearer ${token}` } } : undefined }));
  return client;
}

function sdkCaller(client: Client, tool: string): Caller {
  return async () => {
    const result = await client.callTool({ name: tool, arguments: { query: 'bench' } });
    if (result.isError) throw new Error('isError');
  };
}

let requestCounter = 0;
function restCaller(port: number, tool = 'tracker_search', args: Record<string, unknown> = { query: 'bench' }): Caller {
  return async () => {
    const body = JSON.stringify({
      agent_id: 'bench_agent',
      agent_version: '1.0.0',
      request_id: `bench_${process.pid}_${++requestCounter}`,
      tool,
      arguments: args,
    });
    const headers = {
      'content-type': 'application/json',
      ...signRequestHeaders('bench_agent', { alg: 'hmac-sha256', secret: SECRET }, 'POST', '/api/tools/call', body),
    };
    const res = await fetch(`http://127.0.0.1:${port}/api/tools/call`, { method: 'POST', headers, body });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(String(res.status));
  };
}

async function waitFor(url: string): Promise<void> {
  for (let i = 0; i < 2400; i++) {
    try {
      if ((await fetch(url)).status < 500) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${url} never answered`);
}

function stop(child: ChildProcess): Promise<unknown> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  return exited;
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'agw-mcp-bench-'));
  const upstreamPort = await freePort();
  const upstream = spawn(process.execPath, ['node_modules/tsx/dist/cli.mjs', __filename, '--serve-upstream', String(upstreamPort)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}/mcp`;
  let gateway: ChildProcess | undefined;
  const clients: Client[] = [];
  try {
    await waitFor(upstreamUrl);
    const configFile = join(root, 'gateway.yaml');
    writeFileSync(configFile, gatewayConfig(upstreamUrl));
    process.env.BENCH_UPSTREAM_TOKEN = UPSTREAM_TOKEN; // secrets are read from the process environment
    const env = { ...process.env, GATEWAY_CONFIG: configFile };
    const report = await pinMcpTools(env);
    if (!report.complete) throw new Error(`mcp:pin failed: ${report.lines.join('; ')}`);
    const port = await freePort();
    mkdirSync(join(root, 'workspace'));
    writeFileSync(join(root, 'workspace', 'hello.txt'), 'hello\n');
    gateway = spawn(process.execPath, ['dist/main.js'], {
      env: {
        ...env,
        PORT: String(port),
        HOST: '127.0.0.1',
        GATEWAY_DATA_DIR: join(root, 'data'),
        GATEWAY_WORKSPACE: join(root, 'workspace'),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await waitFor(`http://127.0.0.1:${port}/readyz`);
    const points: Point[] = [];
    for (const concurrency of CONCURRENCIES) {
      const direct = await Promise.all(Array.from({ length: concurrency }, () => sdkClient(upstreamUrl)));
      const viaMcp = await Promise.all(Array.from({ length: concurrency }, () => sdkClient(`http://127.0.0.1:${port}/mcp`, MCP_TOKEN)));
      clients.push(...direct, ...viaMcp);
      points.push(
        await measure(
          'direct (SDK client → upstream)',
          direct.map((c) => sdkCaller(c, 'search')),
        ),
      );
      points.push(
        await measure(
          'gateway MCP door (SDK client → /mcp → upstream)',
          viaMcp.map((c) => sdkCaller(c, 'tracker_search')),
        ),
      );
      points.push(
        await measure(
          'gateway REST door (signed POST → upstream)',
          Array.from({ length: concurrency }, () => restCaller(port)),
        ),
      );
      // The gateway's own cost without an upstream, for reference: the same door reading a small file.
      points.push(
        await measure(
          'gateway REST door, fs.read (no upstream)',
          Array.from({ length: concurrency }, () => restCaller(port, 'read_file', { path: 'hello.txt' })),
        ),
      );
    }
    console.table(points);
    for (const concurrency of CONCURRENCIES) {
      const direct = points.find((p) => p.concurrency === concurrency && p.path.startsWith('direct'))!;
      for (const door of points.filter((p) => p.concurrency === concurrency && p.path.includes('→ upstream') && !p.path.startsWith('direct'))) {
        console.log(
          `c=${concurrency} ${door.path}: +${(door.p50_ms - direct.p50_ms).toFixed(2)} ms p50, ${((door.calls_per_s / direct.calls_per_s) * 100).toFixed(0)}% of direct throughput`,
        );
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    if (gateway) await stop(gateway);
    await stop(upstream);
    rmSync(root, { recursive: true, force: true });
  }
}

function gatewayConfig(upstreamUrl: string): string {
  const mcpToken = createHash('sha256').update(MCP_TOKEN).digest('hex');
  return `
settings: { mcp_resync_s: 300 }
roles:
  bench: { rate_limit: { limit: 1000000, ttl_s: 1 } }
agents:
  - id: bench_agent
    role: bench
    key: { alg: hmac-sha256, secret: "${SECRET}" }
    mcp_tokens: [{ token_sha256: "${mcpToken}" }]
secrets:
  UPSTREAM_TOKEN: { from: env, name: BENCH_UPSTREAM_TOKEN }
mcp_servers:
  tracker: { url: "${upstreamUrl}", headers: { Authorization: "Bearer \${secret:UPSTREAM_TOKEN}" }, allowed_hosts: [127.0.0.1] }
tools:
  tracker_search: { kind: mcp, server: tracker, tool: search, roles: [bench] }
  read_file: { kind: fs.read, roles: [bench], input_schema: { type: object, required: [path], properties: { path: { type: string } } } }
`;
}

if (values['serve-upstream']) {
  void new McpHttpUpstream().start(Number(values['serve-upstream']));
} else {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
