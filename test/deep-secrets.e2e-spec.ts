import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { pinMcpTools } from '../src/kinds/mcp/mcp-pin';
import { HostileMcpHttpUpstream, nested } from './fixtures/mcp-hostile-http-upstream';
import { HMAC_SECRET, MCP_DEPLOY_TOKEN, TestGateway } from './support/test-gateway';

jest.setTimeout(60_000);

// Three credentials the gateway injects, one per kind of upstream; each upstream hands its own back
// nested 120 levels deep, past the 64 levels the scrubber walks.
const HTTP_TOKEN = 'deep-http-token-0123456789abcdef';
const MCP_HTTP_TOKEN = 'deep-mcp-http-token-0123456789abcdef';
const STDIO_KEY = 'deep-stdio-key-0123456789abcdef';
process.env.DEEP_TEST_HTTP_TOKEN = HTTP_TOKEN;
process.env.DEEP_TEST_MCP_HTTP_TOKEN = MCP_HTTP_TOKEN;
process.env.DEEP_TEST_STDIO_KEY = STDIO_KEY;
const ALL = [HTTP_TOKEN, MCP_HTTP_TOKEN, STDIO_KEY];

const FIXTURE = join(__dirname, 'fixtures', 'mcp-hostile-server.js');
const TOO_DEEP = '[REDACTED:too_deep]';

/** Every credential's absence from `text`, as one comparable value. */
const leaked = (text: string) => ALL.filter((secret) => text.toLowerCase().includes(secret.toLowerCase()));

/** Every file under `dir`, read whole (the audit log, the SQLite database and its WAL, the replay store). */
function filesUnder(dir: string): Array<{ path: string; text: string }> {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [{ path, text: readFileSync(path).toString('latin1') }];
  });
}

describe('a secret nested deeper than the scrubber walks never leaves the gateway (issue 20, finding 1)', () => {
  let upstream: Server;
  let mcpUpstream: HostileMcpHttpUpstream;
  let gw: TestGateway;
  let agent: Client;

  beforeAll(async () => {
    // An http upstream that echoes the Authorization header it received, 120 levels deep.
    upstream = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // 400,000 levels in under 1 MiB: deeper than JSON.stringify can go.
      if (req.url === '/very-deep') res.end(`${'['.repeat(400_000)}${JSON.stringify(req.headers.authorization)}${']'.repeat(400_000)}`);
      else res.end(JSON.stringify({ echoed: nested(120, { authorization: req.headers.authorization ?? null }) }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    mcpUpstream = await new HostileMcpHttpUpstream().start();
    const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const http = (name: string, extra = '', path = '/deep') =>
      `  ${name}: { kind: http, roles: [deployer], request: { method: GET, url: "${base}${path}", headers: { Authorization: "Bearer \${secret:HTTP_TOKEN}" } }, allowed_hosts: [127.0.0.1], input_schema: { type: object }${extra} }`;
    gw = await new TestGateway({
      secrets: [
        '  HTTP_TOKEN: { from: env, name: DEEP_TEST_HTTP_TOKEN }',
        '  MCP_HTTP_TOKEN: { from: env, name: DEEP_TEST_MCP_HTTP_TOKEN }',
        '  STDIO_KEY: { from: env, name: DEEP_TEST_STDIO_KEY }',
      ].join('\n'),
      mcpServers: [
        `  hostile_http: { url: "${mcpUpstream.url}", headers: { Authorization: "Bearer \${secret:MCP_HTTP_TOKEN}" }, allowed_hosts: [127.0.0.1], timeout_ms: 5000 }`,
        `  hostile_stdio: { command: ["${process.execPath}", "${FIXTURE}"], env: { UPSTREAM_KEY: "\${secret:STDIO_KEY}" }, timeout_ms: 10000 }`,
      ].join('\n'),
      extraTools: [
        http('deep_echo'),
        http('deep_echo_approved', ', requires_approval: true'),
        http('very_deep_echo', '', '/very-deep'),
        '  mcp_deep: { kind: mcp, server: hostile_http, tool: deep_auth, roles: [deployer] }',
        '  mcp_deep_approved: { kind: mcp, server: hostile_http, tool: deep_auth, roles: [deployer], requires_approval: true }',
        '  mcp_leak_error_approved: { kind: mcp, server: hostile_http, tool: leak_error, roles: [deployer], requires_approval: true }',
        '  stdio_deep: { kind: mcp, server: hostile_stdio, tool: deep_env, roles: [deployer] }',
      ].join('\n'),
      beforeBoot: async (g) => {
        const report = await pinMcpTools({ ...process.env, GATEWAY_CONFIG: g.configFile, TEST_DEPLOY_KEY: HMAC_SECRET });
        if (!report.complete) throw new Error(`mcp:pin failed: ${report.lines.join('; ')}`);
      },
    }).start();
    await gw.app.listen(0, '127.0.0.1');
    agent = new Client({ name: 'deep-secrets-agent', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    const url = new URL(`http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`);
    await agent.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${MCP_DEPLOY_TOKEN}` } } }));
  });
  afterAll(async () => {
    await agent?.close();
    await gw?.stop();
    await mcpUpstream?.stop();
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  it.each([
    ['an http tool (JSON body)', 'deep_echo'],
    ['an upstream MCP tool over Streamable HTTP (structuredContent)', 'mcp_deep'],
    ['an upstream MCP tool over stdio (structuredContent)', 'stdio_deep'],
  ])('%s: the REST door answers 200 with the deep part replaced by the marker', async (_what, tool) => {
    const res = await gw.call(tool, {});
    expect(res.status).toBe(200);
    expect(leaked(res.text)).toEqual([]);
    expect(res.text).toContain(TOO_DEEP);
  });

  it('an http tool whose JSON nests 400,000 levels: 200 through both doors, the deep part replaced', async () => {
    const res = await gw.call('very_deep_echo', {});
    expect(res.status).toBe(200);
    expect(leaked(res.text)).toEqual([]);
    expect(res.text).toContain(TOO_DEEP);
    const result = await agent.callTool({ name: 'very_deep_echo', arguments: {} });
    expect(result.isError).toBe(false);
    expect(leaked(JSON.stringify(result))).toEqual([]);
  });

  it.each([['deep_echo'], ['mcp_deep'], ['stdio_deep']])('%s: the MCP door answers without the credential, in content and structuredContent', async (tool) => {
    const result = await agent.callTool({ name: tool, arguments: {} });
    expect(result.isError).toBe(false);
    const text = JSON.stringify(result);
    expect(leaked(text)).toEqual([]);
    expect(text).toContain(TOO_DEEP);
  });

  it.each([['deep_echo_approved'], ['mcp_deep_approved']])(
    "%s after approval: neither the /approve answer, the agent's view, nor the approvals row holds the credential",
    async (tool) => {
      const asked = await gw.call(tool, {});
      expect(asked.status).toBe(202);
      const id = asked.body.approval_id as string;
      const decided = await gw.asApprover().decide(id, true);
      expect(decided.status).toBe(200);
      expect(decided.body.status).toBe('executed');
      expect(leaked(decided.text)).toEqual([]);
      expect(decided.text).toContain(TOO_DEEP);

      const seen = await gw.get(`/api/approvals/${id}`);
      expect(seen.status).toBe(200);
      expect(leaked(seen.text)).toEqual([]);

      const db = new Database(join(gw.dataDir, 'gateway.db'), { readonly: true });
      const row = db.prepare('SELECT * FROM approvals WHERE id = ?').get(id) as Record<string, unknown>;
      db.close();
      expect(row.status).toBe('executed');
      expect(leaked(JSON.stringify(row))).toEqual([]);
      expect(String(row.result)).toContain(TOO_DEEP);
    },
  );

  it("an upstream's error text that quotes the credential: scrubbed in the /approve answer and in the approvals row", async () => {
    const asked = await gw.call('mcp_leak_error_approved', {});
    expect(asked.status).toBe(202);
    const id = asked.body.approval_id as string;
    const decided = await gw.asApprover().decide(id, true);
    expect({ http: decided.status, status: decided.body.status }).toEqual({ http: 502, status: 'tool_error' });
    expect(decided.body.error).toMatch(/refused: you sent Bearer \[REDACTED:secret:[0-9a-f]{8}\]/);
    const db = new Database(join(gw.dataDir, 'gateway.db'), { readonly: true });
    const row = db.prepare('SELECT * FROM approvals WHERE id = ?').get(id) as Record<string, unknown>;
    db.close();
    expect(row.status).toBe('failed');
    expect(leaked(JSON.stringify(row))).toEqual([]);
    expect(String(row.error)).toContain('[REDACTED:secret:');
  });

  it('no file the gateway wrote holds a credential: the audit log, the database, the replay store', () => {
    const files = filesUnder(gw.dataDir);
    expect(files.map((f) => f.path)).toEqual(expect.arrayContaining([gw.auditFile, join(gw.dataDir, 'gateway.db')]));
    expect(files.filter((f) => leaked(f.text).length > 0).map((f) => f.path)).toEqual([]);
  });
});
