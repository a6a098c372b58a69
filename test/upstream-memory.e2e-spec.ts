import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pinMcpTools } from '../src/kinds/mcp/mcp-pin';
import { HostileMcpHttpUpstream } from './fixtures/mcp-hostile-http-upstream';
import { HMAC_SECRET, TestGateway } from './support/test-gateway';

jest.setTimeout(120_000);

const FLOOD_BYTES = 400 * 1024 * 1024;
const MiB = 1024 * 1024;
const FIXTURE = join(__dirname, 'fixtures', 'mcp-hostile-server.js');

/** Runs `work` while sampling this process's RSS (the gateway runs in it) every 10 ms: the highest growth over the start. */
async function peakRssGrowth<T>(work: () => Promise<T>): Promise<{ value: T; growth: number; ms: number }> {
  const start = process.memoryUsage().rss;
  let peak = start;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  const began = Date.now();
  try {
    const value = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, growth: peak - start, ms: Date.now() - began };
  } finally {
    clearInterval(sampler);
  }
}

/** Writes "x" until `limit` bytes are out or the client goes away, at the pace the client reads; returns what it wrote. */
async function endlessBody(res: ServerResponse, limit: number, sent: { bytes: number }): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('{"data":"');
  const chunk = Buffer.alloc(64 * 1024, 'x');
  let gone = false;
  res.once('close', () => (gone = true));
  while (!gone && sent.bytes < limit) {
    sent.bytes += chunk.length;
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done).off('close', done);
          resolve();
        };
        res.on('drain', done).on('close', done);
      });
    }
  }
  res.destroy();
}

describe('an upstream that answers without end cannot swell the gateway (issue 20, finding 5)', () => {
  const httpSent = { bytes: 0 };
  let upstream: Server;
  let mcpUpstream: HostileMcpHttpUpstream;
  let gw: TestGateway;
  let events: string;

  const floodedStdio = () =>
    existsSync(events)
      ? readFileSync(events, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line).sent as number)
          .reduce((a, b) => Math.max(a, b), 0)
      : 0;

  beforeAll(async () => {
    upstream = createServer((_req, res) => void endlessBody(res, FLOOD_BYTES, httpSent));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    mcpUpstream = await new HostileMcpHttpUpstream(FLOOD_BYTES).start();
    const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gw = await new TestGateway({
      mcpServers: [
        `  hostile_http: { url: "${mcpUpstream.url}", allowed_hosts: [127.0.0.1], timeout_ms: 5000 }`,
        `  hostile_stdio: { command: ["${process.execPath}", "${FIXTURE}"], env: { MCP_HOSTILE_EVENTS: "EVENTS" }, timeout_ms: 10000 }`,
      ].join('\n'),
      // Timeouts long enough that only the read limit can end these calls quickly.
      extraTools: [
        `  endless_http: { kind: http, roles: [deployer], timeout_ms: 60000, request: { method: GET, url: "${base}/endless" }, allowed_hosts: [127.0.0.1], input_schema: { type: object } }`,
        '  endless_event: { kind: mcp, server: hostile_http, tool: flood_event, roles: [deployer], timeout_ms: 60000 }',
        '  endless_json: { kind: mcp, server: hostile_http, tool: flood_json, roles: [deployer], timeout_ms: 60000 }',
        '  endless_line: { kind: mcp, server: hostile_stdio, tool: huge_line, roles: [deployer], timeout_ms: 60000 }',
        '  stdio_deep: { kind: mcp, server: hostile_stdio, tool: deep_env, roles: [deployer] }',
        '  http_deep: { kind: mcp, server: hostile_http, tool: deep_auth, roles: [deployer] }',
      ].join('\n'),
      beforeBoot: async (g) => {
        const { writeFileSync } = await import('node:fs');
        events = join(g.root, 'hostile-events.jsonl');
        writeFileSync(g.configFile, readFileSync(g.configFile, 'utf8').replace('"EVENTS"', JSON.stringify(events)));
        const report = await pinMcpTools({ ...process.env, GATEWAY_CONFIG: g.configFile, TEST_DEPLOY_KEY: HMAC_SECRET });
        if (!report.complete) throw new Error(`mcp:pin failed: ${report.lines.join('; ')}`);
      },
    }).start();
    // Warm up: the first calls load code and fill pools, which is not what is measured.
    expect((await gw.call('stdio_deep', {})).status).toBe(200);
    expect((await gw.call('http_deep', {})).status).toBe(200);
  });
  afterAll(async () => {
    await gw?.stop();
    await mcpUpstream?.stop();
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  it('an http tool whose upstream sends a 400 MB body: tool_error at 1 MiB, memory flat, the upstream stops', async () => {
    const { value: res, growth, ms } = await peakRssGrowth(() => gw.call('endless_http', {}));
    expect({ http: res.status, status: res.body.status, error: res.body.error }).toEqual({
      http: 502,
      status: 'tool_error',
      error: 'Upstream response is larger than 1 MiB',
    });
    expect(ms).toBeLessThan(5000);
    expect(growth).toBeLessThan(100 * MiB);
    expect(httpSent.bytes).toBeLessThan(32 * MiB);
  });

  it.each([
    ['one server-sent event that never ends', 'endless_event'],
    ['a JSON body that never ends', 'endless_json'],
  ])('an MCP upstream over Streamable HTTP answering with %s: tool_error at the read limit, memory flat', async (_what, tool) => {
    const sentBefore = mcpUpstream.sent;
    const { value: res, growth, ms } = await peakRssGrowth(() => gw.call(tool, {}));
    expect({ http: res.status, status: res.body.status }).toEqual({ http: 502, status: 'tool_error' });
    expect(res.body.error).toBe('MCP server "hostile_http" sent a message larger than 2 MiB; reading stopped and the connection is reset');
    expect(ms).toBeLessThan(5000);
    expect(growth).toBeLessThan(100 * MiB);
    expect(mcpUpstream.sent - sentBefore).toBeLessThan(32 * MiB);
    // The connection is made again, and the server's other tools work.
    const deadline = Date.now() + 10_000;
    let again = await gw.call('http_deep', {});
    while (again.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      again = await gw.call('http_deep', {});
    }
    expect(again.status).toBe(200);
  });

  it('a stdio MCP upstream printing one line that never ends: tool_error at the read limit, memory flat', async () => {
    const { value: res, growth, ms } = await peakRssGrowth(() => gw.call('endless_line', {}));
    expect({ http: res.status, status: res.body.status }).toEqual({ http: 502, status: 'tool_error' });
    expect(res.body.error).toBe('MCP server "hostile_stdio" sent a message larger than 2 MiB; reading stopped and the connection is reset');
    expect(ms).toBeLessThan(5000);
    expect(growth).toBeLessThan(100 * MiB);
    // The child is stopped and started again; its flood ended far short of 400 MB.
    const deadline = Date.now() + 15_000;
    let again = await gw.call('stdio_deep', {});
    while (again.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      again = await gw.call('stdio_deep', {});
    }
    expect(again.status).toBe(200);
    expect(floodedStdio()).toBeLessThan(FLOOD_BYTES);
  });
});
