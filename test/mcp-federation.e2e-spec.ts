import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport, type ReadResourceResult } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { definitionSha256, type McpLock } from '../src/kinds/mcp/mcp-lock';
import { pinMcpTools } from '../src/kinds/mcp/mcp-pin';
import { eventually } from './support/eventually';
import { HMAC_SECRET, MCP_DEPLOY_TOKEN, MCP_READER_TOKEN, TestGateway } from './support/test-gateway';

jest.setTimeout(90_000);

/** @modelcontextprotocol/server-everything (a devDependency at an exact version), a real third-party MCP server, over stdio. */
const EVERYTHING = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
const DOCS = 'demo://resource/static/document';
const FEATURES = `${DOCS}/features.md`;
const ARCHITECTURE = `${DOCS}/architecture.md`;
/** A phrase of features.md, declared as a secret: the gateway must never pass it on. */
const SECRET_PHRASE = 'Uses Zod to validate inputs';
const MARKER = /\[REDACTED:secret:[0-9a-f]{8}\]/g;

const withoutMeta = <T extends { _meta?: unknown }>(result: T): Omit<T, '_meta'> => {
  const { _meta: _serverInfo, ...rest } = result;
  return rest;
};
/** server-everything's dynamic resources carry the time they were made. */
const untimed = (result: ReadResourceResult) =>
  result.contents.map((item) => ({
    ...item,
    ...('text' in item && { text: item.text.replace(/created at .*$/, 'created at T') }),
    ...('blob' in item && {
      blob: Buffer.from(item.blob, 'base64')
        .toString()
        .replace(/created at .*$/, 'created at T'),
    }),
  }));

describe('upstream resources and prompts through the MCP door: declared, pinned, per role, checked and audited', () => {
  let gw: TestGateway;
  let direct: Client;
  let deployer: Client;
  let reader: Client;
  let url: URL;

  const connect = async (url: URL, token: string) => {
    const client = new Client({ name: 'federation-test-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    return client;
  };
  const records = (tool: string) => gw.auditRecords().filter((record) => record.tool === tool);

  const secretDir = mkdtempSync(join(tmpdir(), 'federation-secret-'));
  const secretFile = join(secretDir, 'phrase');

  beforeAll(async () => {
    writeFileSync(secretFile, SECRET_PHRASE);
    gw = new TestGateway({
      mcpServers: [
        `  everything:`,
        `    command: ["${process.execPath}", "${EVERYTHING}", "stdio"]`,
        `    timeout_ms: 15000`,
        `    resources: { roles: [deployer], uris: ["${FEATURES}", "${ARCHITECTURE}", "demo://resource/dynamic/text/*", "demo://resource/dynamic/blob/*"] }`,
        `    prompts: { roles: [deployer], names: [simple-prompt, args-prompt, resource-prompt] }`,
      ].join('\n'),
      extraTools: '  ev_links: { kind: mcp, server: everything, tool: "get-resource-links", roles: [deployer] }',
      secrets: `  DOC_PHRASE: { from: file, path: "${secretFile}" }`,
      beforeBoot: async (g) => {
        const report = await pinMcpTools({ ...process.env, GATEWAY_CONFIG: g.configFile, TEST_DEPLOY_KEY: HMAC_SECRET });
        expect(report).toMatchObject({ written: true, complete: true });
        expect(report.lines).toEqual(
          expect.arrayContaining([
            expect.stringMatching(/^prompts\.everything\/args-prompt pinned \(sha256 /),
            expect.stringMatching(new RegExp(`^resources\\.everything/${FEATURES} pinned`)),
            expect.stringContaining('demo://resource/dynamic/text/* is a prefix'),
          ]),
        );
        // The operator's reviewed pin of resource-prompt differs from what the server lists now: it must be quarantined.
        const lockFile = join(g.root, 'mcp-lock.json');
        const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as McpLock;
        const entry = lock.prompts!['everything/resource-prompt'];
        entry.definition.description = 'A prompt as it was reviewed';
        entry.sha256 = definitionSha256(entry.definition);
        writeFileSync(lockFile, JSON.stringify(lock, null, 2));
      },
    });
    await gw.start();
    await gw.app.listen(0, '127.0.0.1');
    url = new URL(`http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`);
    deployer = await connect(url, MCP_DEPLOY_TOKEN);
    reader = await connect(url, MCP_READER_TOKEN);
    direct = new Client({ name: 'federation-direct', version: '1.0.0' });
    await direct.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], stderr: 'pipe' }));
  });
  afterAll(async () => {
    await deployer?.close();
    await reader?.close();
    await direct?.close();
    await gw?.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  it('resources/list shows the declared, pinned resources to an allowed role, as the server lists them, and nothing to another role', async () => {
    const listed = (await deployer.listResources()).resources;
    const upstream = (await direct.listResources()).resources;
    expect(listed.map((r) => r.uri)).toEqual([ARCHITECTURE, FEATURES]);
    for (const resource of listed) {
      const { uri, name, description, mimeType } = upstream.find((r) => r.uri === resource.uri)!;
      expect(resource).toEqual({ uri, name, description, mimeType });
    }
    expect((await reader.listResources()).resources).toEqual([]);
    expect(deployer.getServerCapabilities()).toMatchObject({ resources: {}, prompts: {} });
  });

  it('resources/read of a declared resource equals a direct read, with secrets scrubbed, and is on the audit record', async () => {
    const [want, got] = await Promise.all([direct.readResource({ uri: FEATURES }), deployer.readResource({ uri: FEATURES })]);
    const text = (got.contents[0] as { text: string }).text;
    expect(text).not.toContain(SECRET_PHRASE);
    expect(text.match(MARKER)).toHaveLength(2);
    const unscrubbed = { ...got.contents[0], text: text.replace(MARKER, SECRET_PHRASE) };
    expect(withoutMeta({ ...got, contents: [unscrubbed] })).toEqual(withoutMeta(want));
    // A document without the phrase arrives byte for byte.
    const [wantPlain, gotPlain] = await Promise.all([direct.readResource({ uri: ARCHITECTURE }), deployer.readResource({ uri: ARCHITECTURE })]);
    expect(withoutMeta(gotPlain)).toEqual(withoutMeta(wantPlain));
    const decision = records('resources/read').find((r) => r.event === 'decision' && (r.arguments as { uri?: string }).uri === FEATURES);
    expect(decision).toMatchObject({ decision: 'allow', channel: 'mcp', arguments: { server: 'everything', uri: FEATURES } });
    expect(records('resources/read')).toContainEqual(expect.objectContaining({ audit_id: decision!.audit_id, event: 'outcome', status: 'executed' }));
  });

  it('a resource link an upstream tool returned can be read through the gateway', async () => {
    const result = await deployer.callTool({ name: 'ev_links', arguments: { count: 2 } });
    const links = result.content.filter((item) => item.type === 'resource_link');
    expect(links.map((link) => link.uri)).toEqual(['demo://resource/dynamic/blob/1', 'demo://resource/dynamic/text/2']);
    for (const { uri } of links) {
      const [want, got] = await Promise.all([direct.readResource({ uri }), deployer.readResource({ uri })]);
      expect(untimed(got)).toEqual(untimed(want));
      expect(got.contents[0].uri).toBe(uri);
    }
  });

  it('refuses an undeclared uri (or one that climbs out of a declared prefix) with a reason code, on the audit record', async () => {
    for (const uri of [`${DOCS}/startup.md`, 'demo://resource/dynamic/text/../../static/document/startup.md', 'demo://resource/dynamic/text/%2e%2e/x']) {
      await expect(deployer.readResource({ uri })).rejects.toThrow(/resource_not_allowed/);
      await eventually(
        async () => records('resources/read').filter((r) => (r.arguments as { uri?: string } | undefined)?.uri === uri),
        (list) => list.length > 0,
      );
      expect(records('resources/read').filter((r) => (r.arguments as { uri?: string } | undefined)?.uri === uri)).toEqual([
        expect.objectContaining({ event: 'decision', decision: 'deny', reason_code: 'resource_not_allowed', http_status: 403, arguments: { uri } }),
      ]);
    }
  });

  it('prompts/list and prompts/get of a declared prompt equal the direct result', async () => {
    const listed = (await deployer.listPrompts()).prompts;
    const upstream = (await direct.listPrompts()).prompts;
    expect(listed.map((p) => p.name)).toEqual(['args-prompt', 'resource-prompt', 'simple-prompt']);
    const args = listed.find((p) => p.name === 'args-prompt')!;
    const { name, title, description, arguments: argsOf } = upstream.find((p) => p.name === 'args-prompt')!;
    expect(args).toEqual({ name, title, description, arguments: argsOf });
    for (const [prompt, promptArgs] of [
      ['args-prompt', { city: 'Chicago', state: 'IL' }],
      ['simple-prompt', {}],
    ] as const) {
      const [want, got] = await Promise.all([
        direct.getPrompt({ name: prompt, arguments: promptArgs }),
        deployer.getPrompt({ name: prompt, arguments: promptArgs }),
      ]);
      expect(withoutMeta(got)).toEqual(withoutMeta(want));
    }
    expect(records('prompts/get')).toContainEqual(
      expect.objectContaining({
        event: 'decision',
        decision: 'allow',
        arguments: { server: 'everything', name: 'args-prompt', arguments: { city: 'Chicago', state: 'IL' } },
      }),
    );
  });

  it('a prompt whose upstream definition differs from its pin is quarantined: listed as pinned, refused on get, and recorded', async () => {
    expect((await deployer.listPrompts()).prompts.find((p) => p.name === 'resource-prompt')!.description).toBe('A prompt as it was reviewed');
    await expect(deployer.getPrompt({ name: 'resource-prompt', arguments: { resourceType: 'Text', resourceId: '1' } })).rejects.toThrow(
      /prompt_definition_changed/,
    );
    expect(gw.auditRecords()).toContainEqual(
      expect.objectContaining({
        event: 'upstream_change',
        status: 'quarantined',
        reason_code: 'prompt_definition_changed',
        upstream: expect.objectContaining({ server: 'everything', tool: 'resource-prompt' }),
      }),
    );
  });

  it('a reviewed re-pin (npm run mcp:pin) lifts the quarantine without a restart', async () => {
    const check = await pinMcpTools({ ...process.env, GATEWAY_CONFIG: gw.configFile, TEST_DEPLOY_KEY: HMAC_SECRET }, { check: true });
    expect(check).toMatchObject({ written: false, changed: true });
    expect(check.lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^prompts\.everything\/resource-prompt CHANGED since the last pin \(description; sha256 /),
        '    -A prompt as it was reviewed',
        '    +A prompt that includes an embedded resource reference',
      ]),
    );
    expect(await pinMcpTools({ ...process.env, GATEWAY_CONFIG: gw.configFile, TEST_DEPLOY_KEY: HMAC_SECRET })).toMatchObject({ written: true });
    const args = { resourceType: 'Text', resourceId: '1' };
    const got = await eventually(
      () => deployer.getPrompt({ name: 'resource-prompt', arguments: args }).catch((err: Error) => err),
      (answer) => !(answer instanceof Error),
      10_000,
    );
    const want = await direct.getPrompt({ name: 'resource-prompt', arguments: args });
    expect(JSON.stringify(withoutMeta(got as typeof want)).replace(/created at [^"]*/, '')).toBe(
      JSON.stringify(withoutMeta(want)).replace(/created at [^"]*/, ''),
    );
    expect((await deployer.listPrompts()).prompts.find((p) => p.name === 'resource-prompt')!.description).toBe(
      'A prompt that includes an embedded resource reference',
    );
    expect(gw.auditRecords()).toContainEqual(
      expect.objectContaining({
        event: 'upstream_change',
        status: 'repinned',
        upstream: expect.objectContaining({ server: 'everything', tool: 'resource-prompt' }),
      }),
    );
  });

  it('a client on the 2026-07-28 revision reads and gets the same', async () => {
    const modern = new Client({ name: 'federation-modern-agent', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await modern.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${MCP_DEPLOY_TOKEN}` } } }));
    try {
      // The gateway's own cache hints on this revision: private, not to be kept (every read is checked).
      expect(withoutMeta(await modern.readResource({ uri: ARCHITECTURE }))).toEqual({
        ...withoutMeta(await direct.readResource({ uri: ARCHITECTURE })),
        cacheScope: 'private',
        ttlMs: 0,
      });
      expect(withoutMeta(await modern.getPrompt({ name: 'simple-prompt' }))).toEqual(withoutMeta(await direct.getPrompt({ name: 'simple-prompt' })));
      await expect(modern.readResource({ uri: `${DOCS}/startup.md` })).rejects.toThrow(/resource_not_allowed/);
    } finally {
      await modern.close();
    }
  });

  it('a role without access gets nothing: no prompts listed, every read and get refused and recorded', async () => {
    expect((await reader.listPrompts()).prompts).toEqual([]);
    await expect(reader.readResource({ uri: FEATURES })).rejects.toThrow(/resource_not_allowed/);
    await expect(reader.getPrompt({ name: 'simple-prompt' })).rejects.toThrow(/prompt_not_allowed/);
    await expect(deployer.getPrompt({ name: 'complex_prompt' })).rejects.toThrow(/prompt_not_allowed/);
    expect(records('prompts/get')).toContainEqual(
      expect.objectContaining({ event: 'decision', decision: 'deny', role: 'reader', reason_code: 'prompt_not_allowed', arguments: { name: 'simple-prompt' } }),
    );
    expect(records('resources/read')).toContainEqual(
      expect.objectContaining({ event: 'decision', decision: 'deny', role: 'reader', reason_code: 'resource_not_allowed', arguments: { uri: FEATURES } }),
    );
  });
});
