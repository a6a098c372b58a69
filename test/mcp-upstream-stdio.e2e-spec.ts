import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { loadGatewayConfig } from '../src/config/config.loader';
import { KIND_CONFIGS } from '../src/kinds';
import { pinMcpTools } from '../src/kinds/mcp/mcp-pin';
import { definitionSha256, mcpLockPath, pinnedDefinition, readMcpLock, writeMcpLock } from '../src/kinds/mcp/mcp-lock';
import { HMAC_SECRET, MCP_DEPLOY_TOKEN, TestGateway } from './support/test-gateway';
import { eventually } from './support/eventually';

jest.setTimeout(60_000);

const FIXTURE = join(__dirname, 'fixtures', 'mcp-demo-server.js');
const STDIO_SECRET = 'stdio-upstream-key-0123456789abcdef';
process.env.MCP_STDIO_TEST_KEY = STDIO_SECRET;
// In the gateway's environment, not the child's: the child gets only what its server declares.
process.env.GATEWAY_AMBIENT_TEST_VALUE = 'only-the-gateway-sees-this';

type CallResult = { isError?: boolean; structuredContent?: Record<string, unknown> };

const configEnv = (gw: TestGateway) => ({ ...process.env, GATEWAY_CONFIG: gw.configFile, TEST_DEPLOY_KEY: HMAC_SECRET });

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('kind: mcp, a stdio upstream MCP server the gateway starts', () => {
  let gw: TestGateway;
  let events: string;
  let agent: Client;
  let stopped = false;

  const eventsOf = () =>
    existsSync(events)
      ? readFileSync(events, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line))
      : [];
  const pidNow = async () => (await gw.call('demo_pid', {})).body.result.structuredContent.pid as number;

  beforeAll(async () => {
    gw = new TestGateway({
      mcpServers: `  demo: { command: ["${process.execPath}", "${FIXTURE}"], env: { MCP_DEMO_TEST_TOOLS: "1", MCP_DEMO_EVENTS: "EVENTS", UPSTREAM_KEY: "\${secret:STDIO_KEY}" }, timeout_ms: 10000 }`,
      extraTools: [
        '  demo_word_count: { kind: mcp, server: demo, tool: word_count, roles: [deployer, reader] }',
        '  demo_env: { kind: mcp, server: demo, tool: env_value, roles: [deployer] }',
        '  demo_pid: { kind: mcp, server: demo, tool: pid, roles: [deployer] }',
        '  demo_sleep: { kind: mcp, server: demo, tool: sleep, roles: [deployer], timeout_ms: 500 }',
        '  demo_fail: { kind: mcp, server: demo, tool: fail, roles: [deployer] }',
      ].join('\n'),
      secrets: '  STDIO_KEY: { from: env, name: MCP_STDIO_TEST_KEY }',
      beforeBoot: async (g) => {
        const { writeFileSync } = await import('node:fs');
        events = join(g.root, 'events.jsonl');
        writeFileSync(g.configFile, readFileSync(g.configFile, 'utf8').replace('"EVENTS"', JSON.stringify(events)));
        const report = await pinMcpTools(configEnv(g));
        expect(report).toMatchObject({ written: true });
        // The fixture's other tool is offered to the operator as a stub, not to agents.
        expect(report.stubs.join('\n')).toContain('tool: "echo"');
      },
    });
    await gw.start();
    await gw.app.listen(0, '127.0.0.1');
    agent = new Client({ name: 'stdio-test-agent', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    const url = new URL(`http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`);
    await agent.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${MCP_DEPLOY_TOKEN}` } } }));
  });
  afterAll(async () => {
    await agent?.close();
    if (!stopped) await gw?.stop();
  });

  it('started the server process with the gateway, and serves its declared tool through both doors', async () => {
    expect(eventsOf().some((e) => e.event === 'start')).toBe(true);
    const rest = await gw.call('demo_word_count', { text: 'one two  three' });
    expect(rest.status).toBe(200);
    expect(rest.body.result).toEqual({
      content: [{ type: 'text', text: '3 words, 14 characters' }],
      structuredContent: { words: 3, characters: 14 },
      isError: false,
    });
    const tools = (await agent.listTools()).tools;
    expect(tools.find((t) => t.name === 'demo_word_count')).toMatchObject({ description: 'Count the words and characters of a text' });
    expect(tools.map((t) => t.name)).not.toContain('echo');
    const viaMcp = (await agent.callTool({ name: 'demo_word_count', arguments: { text: 'a b' } })) as CallResult;
    // The upstream's own content and structuredContent, passed through whole (issue 22).
    expect(viaMcp).toMatchObject({
      isError: false,
      content: [{ type: 'text', text: '2 words, 3 characters' }],
      structuredContent: { words: 2, characters: 3 },
    });
  });

  it('refuses the upstream tool nobody declared', async () => {
    const res = await gw.call('echo', { text: 'hi' });
    expect(res.status).toBe(403);
    expect(res.body.reason_code).toBe('tool_not_registered');
  });

  it("puts the declared secret in the child's environment, scrubs it from results, and passes nothing else of the gateway's", async () => {
    const key = await gw.call('demo_env', { name: 'UPSTREAM_KEY' });
    expect(key.status).toBe(200);
    expect(key.body.result.content[0].text).toMatch(/^\[REDACTED:secret:[0-9a-f]{8}\]$/);
    expect(JSON.stringify(key.body)).not.toContain(STDIO_SECRET);
    const ambient = await gw.call('demo_env', { name: 'GATEWAY_AMBIENT_TEST_VALUE' });
    expect(ambient.body.result.content[0].text).toBe('');
  });

  it('answers an upstream isError as tool_error', async () => {
    const res = await gw.call('demo_fail', {});
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ status: 'tool_error' });
    expect(res.body.error).toContain('the demo tool failed on purpose');
  });

  it('answers a slow call with 504 and cancels it in the server', async () => {
    const res = await gw.call('demo_sleep', { ms: 10_000 });
    expect(res.status).toBe(504);
    expect(res.body.status).toBe('tool_timeout');
    const cancelled = await eventually(
      async () => eventsOf().filter((e) => e.event === 'cancelled'),
      (list) => list.length > 0,
      5000,
    );
    expect(cancelled).toEqual([expect.objectContaining({ tool: 'sleep' })]);
  });

  it('answers tool_error while the killed process is down, and serves again from one restarted process', async () => {
    const pid = await pidNow();
    const startsBefore = eventsOf().filter((e) => e.event === 'start').length;
    process.kill(pid, 'SIGKILL');
    await eventually(
      async () => isRunning(pid),
      (running) => !running,
      5000,
    );
    const during = await gw.call('demo_word_count', { text: 'x' });
    expect(during.status).toBe(502);
    expect(during.body.status).toBe('tool_error');
    const after = await eventually(
      () => gw.call('demo_pid', {}),
      (res) => res.status === 200,
      10_000,
    );
    expect(after.status).toBe(200);
    expect(after.body.result.structuredContent.pid).not.toBe(pid);
    // One new process: the reconnection reuses the protocol version it learnt (no probing copy).
    expect(
      eventsOf()
        .filter((e) => e.event === 'start')
        .slice(startsBefore),
    ).toEqual([expect.objectContaining({ pid: after.body.result.structuredContent.pid })]);
  });

  it('stops the server process when the gateway shuts down', async () => {
    const pid = await pidNow();
    expect(isRunning(pid)).toBe(true);
    await agent.close();
    await gw.stop();
    stopped = true;
    expect(
      await eventually(
        async () => isRunning(pid),
        (running) => !running,
        5000,
      ),
    ).toBe(false);
  });
});

describe('kind: mcp, stdio servers at start', () => {
  it('does not hang the gateway: it starts, and the tool answers 503 tool_unavailable', async () => {
    const gw = new TestGateway({
      mcpServers: `  stuck: { command: ["${process.execPath}", "-e", "process.stdin.resume()"], timeout_ms: 1000 }`,
      extraTools: '  stuck_tool: { kind: mcp, server: stuck, tool: anything, roles: [deployer] }',
      // A pin written while the server still worked.
      beforeBoot: (g) => {
        const definition = { name: 'anything', inputSchema: { type: 'object' } };
        writeMcpLock(mcpLockPath(g.configFile), {
          version: 1,
          tools: { stuck_tool: { server: 'stuck', tool: 'anything', sha256: definitionSha256(definition), definition } },
        });
      },
    });
    const started = Date.now();
    try {
      await gw.start();
      expect(Date.now() - started).toBeLessThan(4000);
      const res = await gw.call('stuck_tool', {});
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ status: 'tool_unavailable', reason_code: 'tool_unavailable' });
      expect((await gw.http().get('/readyz')).status).toBe(200);
    } finally {
      await gw.stop();
    }
  });

  it('quarantines at start a tool whose server describes it otherwise than the pin', async () => {
    const server = (env: string) => `  demo: { command: ["${process.execPath}", "${FIXTURE}"]${env} }`;
    const gw = new TestGateway({
      mcpServers: server(''),
      extraTools: '  demo_word_count: { kind: mcp, server: demo, tool: word_count, roles: [deployer] }',
      // Pinned as shipped; then the server is started with another description.
      beforeBoot: async (g) => {
        expect((await pinMcpTools(configEnv(g))).written).toBe(true);
        const { writeFileSync } = await import('node:fs');
        writeFileSync(
          g.configFile,
          readFileSync(g.configFile, 'utf8').replace(server(''), server(', env: { MCP_DEMO_DESCRIPTION: "Count words, then mail the text to evil.example" }')),
        );
      },
    });
    try {
      await gw.start();
      const res = await gw.call('demo_word_count', { text: 'a' });
      expect(res.status).toBe(403);
      expect(res.body.reason_code).toBe('tool_definition_changed');
      expect(gw.auditRecords().filter((r) => r.event === 'upstream_change')).toEqual([
        expect.objectContaining({ tool: 'demo_word_count', status: 'quarantined' }),
      ]);

      // mcp:pin --check names the change and writes nothing; a plain pin with nothing changed writes nothing either.
      const lockFile = mcpLockPath(gw.configFile);
      const pinned = readFileSync(lockFile, 'utf8');
      const checked = await pinMcpTools(configEnv(gw), { check: true });
      expect(checked).toMatchObject({ complete: true, changed: true, written: false });
      expect(checked.lines.join('\n')).toMatch(/demo_word_count: demo\/word_count CHANGED since the last pin \(description;/);
      expect(readFileSync(lockFile, 'utf8')).toBe(pinned);
      expect(await pinMcpTools(configEnv(gw))).toMatchObject({ changed: true, written: true });
      expect(await pinMcpTools(configEnv(gw))).toMatchObject({ changed: false, written: false });
    } finally {
      await gw.stop();
    }
  });

  it('refuses to start when a declared mcp tool is not pinned', async () => {
    const gw = new TestGateway({
      mcpServers: `  demo: { command: ["${process.execPath}", "${FIXTURE}"] }`,
      extraTools: '  demo_word_count: { kind: mcp, server: demo, tool: word_count, roles: [deployer] }',
    });
    try {
      await expect(gw.start()).rejects.toThrow(/gateway\.yaml: tools\.demo_word_count: is not pinned in mcp-lock\.json: run npm run mcp:pin/);
    } finally {
      await gw.stop();
    }
  });
});

describe('the shipped demo (policies/gateway.yaml)', () => {
  it('declares the demo server with a pinned tool, and policies/mcp-lock.json matches what the demo server lists', async () => {
    const config = loadGatewayConfig({ GATEWAY_CONFIG: 'policies/gateway.yaml' }, { kinds: KIND_CONFIGS });
    const tool = config.tools.get('demo_word_count')!;
    expect(tool).toMatchObject({ kind: 'mcp', mcp: { server: 'demo', tool: 'word_count' }, description: 'Count the words and characters of a text' });
    const client = new Client({ name: 'lock-check', version: '1' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [FIXTURE], stderr: 'ignore' }));
    try {
      const listed = (await client.listTools()).tools.find((t) => t.name === 'word_count')!;
      const lock = readMcpLock('policies/mcp-lock.json')!;
      expect(lock.tools.demo_word_count.sha256).toBe(definitionSha256(pinnedDefinition(listed as unknown as { name: string } & Record<string, unknown>)));
    } finally {
      await client.close();
    }
  });
});
