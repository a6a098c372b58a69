import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport, type CallToolResult } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { pinMcpTools } from '../src/kinds/mcp/mcp-pin';
import { HMAC_SECRET, MCP_DEPLOY_TOKEN, TestGateway } from './support/test-gateway';
import { eventually } from './support/eventually';

jest.setTimeout(90_000);

/** @modelcontextprotocol/server-everything (a devDependency at an exact version), a real third-party MCP server, over stdio. */
const EVERYTHING = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
const TEE = join(__dirname, 'fixtures', 'stdio-tee.js');

/** The gateway's tool names for server-everything's tools (the table in README "Upstream MCP servers" lists them). */
const TOOLS: Record<string, string> = {
  ev_echo: 'echo',
  ev_sum: 'get-sum',
  ev_image: 'get-tiny-image',
  ev_structured: 'get-structured-content',
  ev_links: 'get-resource-links',
  ev_reference: 'get-resource-reference',
  ev_annotated: 'get-annotated-message',
  ev_long: 'trigger-long-running-operation',
  ev_toggle: 'toggle-simulated-logging',
};

function withoutMeta(result: CallToolResult): CallToolResult {
  const { _meta: _serverInfo, ...rest } = result;
  return rest;
}

describe('server-everything behind the gateway: results, hints, progress and cancellation pass through the MCP door whole', () => {
  let gw: TestGateway;
  let sent: string;
  let direct: Client;
  let agent: Client;
  let url: URL;
  const requestInit = { headers: { Authorization: `Bearer ${MCP_DEPLOY_TOKEN}` } };

  /** The JSON-RPC messages the gateway sent the upstream, as the tee logged them. */
  const sentToUpstream = (): Array<Record<string, unknown>> =>
    existsSync(sent)
      ? readFileSync(sent, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as Record<string, unknown>)
      : [];

  const directCall = (tool: string, args: Record<string, unknown> = {}) => direct.callTool({ name: TOOLS[tool], arguments: args });
  /** The gateway's answer without the `_meta` its own MCP server adds to every result (its serverInfo). */
  const viaGateway = async (tool: string, args: Record<string, unknown> = {}) => withoutMeta(await agent.callTool({ name: tool, arguments: args }));

  beforeAll(async () => {
    gw = new TestGateway({
      mcpServers: `  everything: { command: ["${process.execPath}", "${TEE}", "SENT", "${process.execPath}", "${EVERYTHING}", "stdio"], timeout_ms: 15000 }`,
      extraTools: [
        ...Object.entries(TOOLS)
          .filter(([name]) => name !== 'ev_toggle' && name !== 'ev_long')
          .map(([name, tool]) => `  ${name}: { kind: mcp, server: everything, tool: "${tool}", roles: [deployer] }`),
        '  ev_long: { kind: mcp, server: everything, tool: "trigger-long-running-operation", roles: [deployer], timeout_ms: 30000 }',
        // The operator's word on hints, over the upstream's pinned ones.
        '  ev_toggle: { kind: mcp, server: everything, tool: "toggle-simulated-logging", roles: [deployer], annotations: { readOnlyHint: true, title: "Logging switch" } }',
      ].join('\n'),
      beforeBoot: async (g) => {
        const { writeFileSync } = await import('node:fs');
        sent = join(g.root, 'sent.jsonl');
        writeFileSync(g.configFile, readFileSync(g.configFile, 'utf8').replace('"SENT"', JSON.stringify(sent)));
        const report = await pinMcpTools({ ...process.env, GATEWAY_CONFIG: g.configFile, TEST_DEPLOY_KEY: HMAC_SECRET });
        expect(report).toMatchObject({ written: true });
      },
    });
    await gw.start();
    await gw.app.listen(0, '127.0.0.1');
    url = new URL(`http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`);
    agent = new Client({ name: 'everything-test-agent', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await agent.connect(new StreamableHTTPClientTransport(url, { requestInit }));
    direct = new Client({ name: 'everything-direct', version: '1.0.0' });
    await direct.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], stderr: 'pipe' }));
  });
  afterAll(async () => {
    await agent?.close();
    await direct?.close();
    await gw?.stop();
  });

  it('an image arrives as an image content item, byte-identical to a direct call', async () => {
    const [want, got] = await Promise.all([directCall('ev_image'), viaGateway('ev_image')]);
    const image = got.content.find((item) => item.type === 'image');
    expect(image).toBeDefined();
    expect(got).toEqual({ ...want, isError: false });
    const wanted = want.content.find((item) => item.type === 'image') as { data: string; mimeType: string };
    expect(Buffer.from((image as { data: string }).data, 'base64').equals(Buffer.from(wanted.data, 'base64'))).toBe(true);
  });

  it("a structured-output tool: its structuredContent equals the direct call's, and tools/list shows the pinned title and outputSchema", async () => {
    const args = { location: 'Chicago' };
    const [want, got] = await Promise.all([directCall('ev_structured', args), viaGateway('ev_structured', args)]);
    expect(got.isError).toBe(false);
    expect(got.structuredContent).toEqual(want.structuredContent);
    expect(got.content).toEqual(want.content);
    const listedDirect = (await direct.listTools()).tools.find((t) => t.name === 'get-structured-content')!;
    const listed = (await agent.listTools()).tools.find((t) => t.name === 'ev_structured')!;
    expect(listed).toMatchObject({ title: listedDirect.title, outputSchema: listedDirect.outputSchema });
  });

  it('resource links, embedded resources and content annotations pass through as the upstream sent them', async () => {
    for (const [tool, args] of [
      ['ev_links', { count: 4 }],
      ['ev_reference', { resourceType: 'Text', resourceId: 2 }],
      ['ev_annotated', { messageType: 'success', includeImage: true }],
    ] as const) {
      const [want, got] = await Promise.all([directCall(tool, args), viaGateway(tool, args)]);
      expect(got).toEqual({ ...want, isError: false });
    }
    const links = await viaGateway('ev_links', { count: 2 });
    expect(links.content.filter((item) => item.type === 'resource_link')).toHaveLength(2);
  });

  it('the REST door still answers the upstream result as its result', async () => {
    const rest = await gw.call('ev_sum', { a: 2, b: 3 });
    expect(rest.status).toBe(200);
    expect(rest.body.result).toEqual({ ...(await directCall('ev_sum', { a: 2, b: 3 })), isError: false });
  });

  it("advertises the pinned annotations (read-only tools read-only), and the operator's override over them", async () => {
    const tools = (await agent.listTools()).tools;
    expect(tools.find((t) => t.name === 'ev_echo')!.annotations).toMatchObject({
      readOnlyHint: true,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: false,
    });
    // Pinned readOnlyHint false; gateway.yaml says true; the rest as pinned.
    expect(tools.find((t) => t.name === 'ev_toggle')!.annotations).toMatchObject({
      readOnlyHint: true,
      destructiveHint: false,
      idempotentHint: false,
      openWorldHint: false,
      title: 'Logging switch',
    });
    // Our own kinds keep their hints.
    expect(tools.find((t) => t.name === 'read_file')!.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false });
  });

  it("forwards the upstream's progress notifications to a client that asked for them", async () => {
    const progress: Array<{ progress: number; total?: number }> = [];
    const result = await agent.callTool({ name: 'ev_long', arguments: { duration: 1, steps: 4 } }, { onprogress: (p) => progress.push(p) });
    expect(result.isError).toBe(false);
    expect(progress.map(({ progress: p, total }) => ({ p, total }))).toEqual([1, 2, 3, 4].map((p) => ({ p, total: 4 })));
  });

  it('a client cancel cancels the upstream call, and the audit says cancelled', async () => {
    const controller = new AbortController();
    const progress: number[] = [];
    const call = agent.callTool(
      { name: 'ev_long', arguments: { duration: 20, steps: 20 } },
      { signal: controller.signal, onprogress: (p) => (progress.push(p.progress), controller.abort()) },
    );
    await expect(call).rejects.toThrow();
    const cancelled = await eventually(
      async () => sentToUpstream().filter((message) => message.method === 'notifications/cancelled'),
      (list) => list.length > 0,
      10_000,
    );
    expect(cancelled).toHaveLength(1);
    const outcome = await eventually(
      async () => gw.auditRecords().filter((record) => record.tool === 'ev_long' && record.status === 'cancelled'),
      (list) => list.length > 0,
      10_000,
    );
    expect(outcome).toEqual([expect.objectContaining({ event: 'outcome', status: 'cancelled', reason_code: 'cancelled', http_status: 499 })]);
    expect(gw.auditRecords().filter((record) => record.tool === 'ev_long' && record.event === 'outcome' && record.status === 'executed')).toHaveLength(1);
  });

  it('a client that goes away from a call answered as plain JSON (no progressToken) cancels the upstream call too', async () => {
    const longCalls = () =>
      sentToUpstream().filter((message) => message.method === 'tools/call' && (message.params as { name?: string }).name === TOOLS.ev_long);
    const started = longCalls().length;
    const before = sentToUpstream().filter((message) => message.method === 'notifications/cancelled').length;
    const controller = new AbortController();
    const call = agent.callTool({ name: 'ev_long', arguments: { duration: 20, steps: 2 } }, { signal: controller.signal });
    await eventually(
      async () => longCalls(),
      (list) => list.length > started,
      10_000,
    );
    controller.abort();
    await expect(call).rejects.toThrow();
    await eventually(
      async () => sentToUpstream().filter((message) => message.method === 'notifications/cancelled'),
      (list) => list.length > before,
      10_000,
    );
    const cancelled = await eventually(
      async () => gw.auditRecords().filter((record) => record.tool === 'ev_long' && record.status === 'cancelled'),
      (list) => list.length > 1,
      10_000,
    );
    expect(cancelled[1]).toMatchObject({ event: 'outcome', reason_code: 'cancelled', http_status: 499 });
  });

  it('the v1.32 SDK client gets the same image and progress', async () => {
    const v1 = new V1Client({ name: 'everything-test-v1', version: '1.32.2' });
    await v1.connect(new V1Transport(url, { requestInit }));
    try {
      const want = await directCall('ev_image');
      expect(withoutMeta((await v1.callTool({ name: 'ev_image', arguments: {} })) as CallToolResult)).toEqual({ ...want, isError: false });
      const progress: number[] = [];
      await v1.callTool({ name: 'ev_long', arguments: { duration: 0.4, steps: 2 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
      expect(progress).toEqual([1, 2]);
    } finally {
      await v1.close();
    }
  });
});
