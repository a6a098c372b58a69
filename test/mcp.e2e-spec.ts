import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { verifyAuditLog } from '../src/audit/audit-verify';
import { freePort } from './support/free-port';
import { HeldUpstream } from './support/held-upstream';
import {
  ADMIN_TOKEN,
  AUDIT_KEY,
  ED_AGENT,
  HMAC_AGENT,
  HMAC_SECRET,
  MCP_DEPLOY_TOKEN,
  MCP_EXPIRED_TOKEN,
  MCP_READER_TOKEN,
  TestGateway,
} from './support/test-gateway';

type Era = 'v2 client (2026-07-28)' | 'v1.32 client (2025-11-25)';
type CallResult = { isError?: boolean; structuredContent?: Record<string, unknown>; content?: Array<{ type: string; text?: string }> };

/** A real MCP client of either SDK line, over Streamable HTTP to the gateway's /mcp. */
interface McpAgent {
  listTools(): Promise<Array<{ name: string; annotations?: Record<string, unknown> }>>;
  call(name: string, args: Record<string, unknown>, opts?: { requestId?: string; onprogress?: (p: unknown) => void }): Promise<CallResult>;
  close(): Promise<void>;
}

async function connect(url: string, token: string, era: Era): Promise<McpAgent> {
  const requestInit = { headers: { Authorization: `Bearer ${token}` } };
  const meta = (requestId?: string) => (requestId ? { _meta: { 'io.agent-gateway/request_id': requestId } } : {});
  if (era === 'v2 client (2026-07-28)') {
    const client = new Client({ name: 'gateway-test-v2', version: '2.4.0' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit }));
    return {
      listTools: async () => (await client.listTools()).tools,
      call: async (name, args, opts = {}) =>
        (await client.callTool({ name, arguments: args, ...meta(opts.requestId) }, { onprogress: opts.onprogress, timeout: 30_000 })) as CallResult,
      close: () => client.close(),
    };
  }
  const client = new V1Client({ name: 'gateway-test-v1', version: '1.32.2' });
  await client.connect(new V1Transport(new URL(url), { requestInit }));
  return {
    listTools: async () => (await client.listTools()).tools,
    call: async (name, args, opts = {}) =>
      (await client.callTool({ name, arguments: args, ...meta(opts.requestId) }, CallToolResultSchema, {
        onprogress: opts.onprogress,
        timeout: 30_000,
      })) as CallResult,
    close: () => client.close(),
  };
}

describe('POST /mcp: the MCP door', () => {
  let gw: TestGateway;
  let url: string;

  beforeAll(async () => {
    gw = await new TestGateway({ agentLimit: { limit: 1000, ttl_s: 60 }, mcp: { approvalWaitS: 10, allowedOrigins: ['https://ide.example'] } }).start();
    await gw.app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`;
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hello, agent\n');
  });
  afterAll(() => gw.stop());

  const post = (headers: Record<string, string>, body: unknown = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify(body),
    });

  describe('a 2026-07-28 tools/call with nothing to stream, answered by the door itself', () => {
    const envelope = {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'raw-client', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': {},
    };
    const call = (meta: Record<string, unknown>, headers: Record<string, string> = {}) =>
      post(
        { authorization: `Bearer ${MCP_READER_TOKEN}`, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'read_file', ...headers },
        { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'read_file', arguments: { path: 'hello.txt' }, _meta: { ...envelope, ...meta } } },
      );
    /** The JSON-RPC answer, whether sent as application/json or as the last event of a stream. */
    const answerOf = async (res: Response) => {
      const text = await res.text();
      if (res.headers.get('content-type')?.startsWith('application/json')) return JSON.parse(text);
      const events = text.split('\n').filter((line) => line.startsWith('data: '));
      return JSON.parse(events[events.length - 1].slice('data: '.length));
    };

    it('answers as application/json exactly what the SDK answers the same call (with a progressToken, through the SDK)', async () => {
      const direct = await call({});
      expect(direct.status).toBe(200);
      expect(direct.headers.get('content-type')).toMatch(/^application\/json/);
      const directAnswer = await answerOf(direct);
      expect(directAnswer).toMatchObject({ jsonrpc: '2.0', id: 7, result: { isError: false, resultType: 'complete' } });
      expect(await answerOf(await call({ progressToken: 'p-7' }))).toEqual(directAnswer);
      const records = gw.auditRecords().filter((r) => r.tool === 'read_file' && r.client === 'raw-client/1' && r.event === 'outcome');
      expect(records.map((r) => r.status)).toEqual(['executed', 'executed']);
    });

    it('leaves headers that disagree with the body to the SDK, which refuses them', async () => {
      const res = await call({}, { 'mcp-name': 'list_dir' });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error?: unknown }).error).toBeDefined();
    });
  });

  describe('authentication, before any JSON-RPC is read', () => {
    it.each([
      ['no token', {}, 'missing_token'],
      ['an unknown token', { authorization: 'Bearer not-a-token' }, 'invalid_token'],
      ['an expired token', { authorization: `Bearer ${MCP_EXPIRED_TOKEN}` }, 'token_expired'],
      ["an approver's token", { authorization: `Bearer ${ADMIN_TOKEN}` }, 'invalid_token'],
      ['a signature instead of a token', { 'x-agent-id': HMAC_AGENT, 'x-agent-timestamp': '1', 'x-agent-signature': 'AAAA' }, 'missing_token'],
    ])('answers %s with 401, WWW-Authenticate and a recorded refusal', async (_what, headers, reason) => {
      const res = await post(headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ success: false, status: 'unauthenticated', reason_code: reason });
      expect(gw.auditRecords().find((r) => r.audit_id === body.audit_id)).toMatchObject({
        event: 'request',
        channel: 'mcp',
        path: '/mcp',
        reason_code: reason,
        http_status: 401,
      });
    });

    it('answers malformed JSON without a token with 401, and with a token as a JSON-RPC parse error', async () => {
      const bad = (headers: Record<string, string>) =>
        fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"jsonrpc":' });
      expect((await bad({})).status).toBe(401);
      const res = await bad({ authorization: `Bearer ${MCP_DEPLOY_TOKEN}` });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32700 } });
    });

    it('refuses an Origin that is not in settings.mcp.allowed_origins (403) and serves a listed one', async () => {
      const refused = await post({ authorization: `Bearer ${MCP_DEPLOY_TOKEN}`, origin: 'https://evil.example' });
      expect(refused.status).toBe(403);
      const body = (await refused.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ status: 'denied', reason_code: 'origin_not_allowed' });
      expect(gw.auditRecords().find((r) => r.audit_id === body.audit_id)).toMatchObject({
        event: 'request',
        channel: 'mcp',
        agent_id: HMAC_AGENT,
        reason_code: 'origin_not_allowed',
        http_status: 403,
      });
      const allowed = await post({ authorization: `Bearer ${MCP_DEPLOY_TOKEN}`, origin: 'https://ide.example', 'mcp-protocol-version': '2025-11-25' });
      expect(allowed.status).toBe(200);
    });

    it('answers GET and DELETE with 405', async () => {
      for (const method of ['GET', 'DELETE']) expect((await fetch(url, { method, headers: { authorization: `Bearer ${MCP_DEPLOY_TOKEN}` } })).status).toBe(405);
    });
  });

  describe.each<Era>(['v2 client (2026-07-28)', 'v1.32 client (2025-11-25)'])('with the SDK %s', (era) => {
    let deployer: McpAgent;
    let reader: McpAgent;
    beforeAll(async () => {
      deployer = await connect(url, MCP_DEPLOY_TOKEN, era);
      reader = await connect(url, MCP_READER_TOKEN, era);
    });
    afterAll(async () => {
      await deployer.close();
      await reader.close();
    });

    it("lists exactly the tools of the agent's role, with annotations, and approval_status", async () => {
      const names = (await reader.listTools()).map((t) => t.name);
      expect(names).toEqual(['approval_status', 'list_dir', 'read_file']);
      const tools = await deployer.listTools();
      expect(tools.map((t) => t.name)).toEqual([
        'approval_status',
        'configure',
        'delete_file',
        'delete_now',
        'limited_read',
        'list_dir',
        'read_file',
        'write_file',
        'write_now',
      ]);
      expect(tools.find((t) => t.name === 'read_file')!.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false });
      expect(tools.find((t) => t.name === 'delete_file')!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    });

    it('replays a call named by _meta request_id: the stored result, nothing runs twice, one replay record', async () => {
      const requestId = `mcp-replay-${era.slice(0, 2)}`;
      const path = `replayed-${era.slice(0, 2)}.txt`;
      const first = await deployer.call('write_now', { path, content: 'once' }, { requestId });
      expect(first).toMatchObject({ isError: false, structuredContent: { path: `/workspace/${path}`, size: 4 } });
      writeFileSync(join(gw.workspace, path), 'changed by someone else');
      const again = await deployer.call('write_now', { path, content: 'once' }, { requestId });
      expect(again.structuredContent).toEqual(first.structuredContent);
      expect(readFileSync(join(gw.workspace, path), 'utf8')).toBe('changed by someone else');
      expect(
        gw
          .auditRecords()
          .filter((r) => r.request_id === requestId)
          .map((r) => r.event),
      ).toEqual(['decision', 'outcome', 'replay']);
      const reused = await deployer.call('write_now', { path, content: 'other' }, { requestId });
      expect(reused).toMatchObject({ isError: true, structuredContent: { status: 'conflict', reason_code: 'request_id_reused' } });
    });

    it('waits for a human when the client asks for progress, and answers with the outcome', async () => {
      const progress: unknown[] = [];
      const path = `awaited-${era.slice(0, 2)}.txt`;
      const call = deployer.call('write_file', { path, content: 'approved while waiting' }, { onprogress: (p) => progress.push(p) });
      let pending: Array<{ approval_id: string; tool: string; arguments: { path: string } }> = [];
      for (let i = 0; i < 50 && pending.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        pending = (await gw.asApprover().get('/api/approvals?status=pending')).body.approvals.filter(
          (a: { arguments: { path: string } }) => a.arguments.path === path,
        );
      }
      expect(pending).toHaveLength(1);
      expect((await gw.asApprover().decide(pending[0].approval_id, true)).status).toBe(200);
      const result = await call;
      expect(result).toMatchObject({ isError: false, structuredContent: { path: `/workspace/${path}` } });
      expect(progress.length).toBeGreaterThanOrEqual(1);
      expect(readFileSync(join(gw.workspace, path), 'utf8')).toBe('approved while waiting');
    });

    /** The pending approval of the call that writes or deletes `path`, once the gateway holds it. */
    async function pendingFor(path: string): Promise<string> {
      for (let i = 0; i < 50; i++) {
        const listed = (await gw.asApprover().get('/api/approvals?status=pending')).body.approvals as Array<{
          approval_id: string;
          arguments: { path: string };
        }>;
        const found = listed.find((a) => a.arguments.path === path);
        if (found) return found.approval_id;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no pending approval for ${path}`);
    }

    it('answers a failed approval it waited for with the error the approver got; a rejected one as rejected', async () => {
      const path = `vanishing-${era.slice(0, 2)}.txt`;
      writeFileSync(join(gw.workspace, path), 'x');
      const failing = deployer.call('delete_file', { path }, { onprogress: () => undefined });
      const failingId = await pendingFor(path);
      rmSync(join(gw.workspace, path));
      expect((await gw.asApprover().decide(failingId, true)).body).toMatchObject({ status: 'tool_error', reason_code: 'tool_error' });
      expect(await failing).toMatchObject({ isError: true, structuredContent: { status: 'tool_error', reason_code: 'tool_error' } });

      const rejectedPath = `refused-${era.slice(0, 2)}.txt`;
      const rejecting = deployer.call('write_file', { path: rejectedPath, content: 'no' }, { onprogress: () => undefined });
      expect((await gw.asApprover().decide(await pendingFor(rejectedPath), false)).status).toBe(200);
      expect(await rejecting).toMatchObject({ isError: true, structuredContent: { status: 'rejected', reason_code: 'rejected' } });
      expect(existsSync(join(gw.workspace, rejectedPath))).toBe(false);
    });

    it('checks approval_status arguments against its declared inputSchema (invalid_arguments, every detail from the schema)', async () => {
      expect(await deployer.call('approval_status', { approval_id: 5 })).toMatchObject({
        isError: true,
        structuredContent: {
          status: 'invalid_arguments',
          reason_code: 'invalid_arguments',
          details: [{ instancePath: '/approval_id', message: 'must be string' }],
        },
      });
      expect((await deployer.call('approval_status', { approval_id: 'approv_x', also: 1 })).structuredContent).toMatchObject({
        status: 'invalid_arguments',
        details: [{ instancePath: '', params: { additionalProperty: 'also' } }],
      });
    });

    it('refuses what the REST envelope refuses: a tool name over 128 characters, a malformed request_id, arguments nested too deep', async () => {
      const longName = `n${'x'.repeat(5000)}`;
      const named = await deployer.call(longName, {});
      expect(named).toMatchObject({
        isError: true,
        structuredContent: { status: 'invalid_request', reason_code: 'invalid_envelope', details: [{ instancePath: '/tool' }] },
      });
      const record = gw.auditRecords().find((r) => r.audit_id === named.structuredContent!.audit_id);
      expect(record).toMatchObject({ status: 'invalid_request', reason_code: 'invalid_envelope' });
      expect(readFileSync(gw.auditFile, 'utf8')).not.toContain('x'.repeat(200));

      const badId = await deployer.call('read_file', { path: 'hello.txt' }, { requestId: 'not a request id!' });
      expect(badId.structuredContent).toMatchObject({ status: 'invalid_request', reason_code: 'invalid_envelope', details: [{ instancePath: '/request_id' }] });
      let deep: Record<string, unknown> = {};
      for (let i = 0; i < 70; i++) deep = { d: deep };
      expect((await deployer.call('read_file', { path: 'hello.txt', deep })).structuredContent).toMatchObject({
        status: 'invalid_request',
        reason_code: 'arguments_too_deep',
      });
    });

    it('records the MCP client it was told about on each decision (2026-07-28 every request, 2025-11-25 from initialize)', async () => {
      const requestId = `mcp-client-${era.slice(0, 2)}`;
      await reader.call('read_file', { path: 'hello.txt' }, { requestId });
      const decision = gw.auditRecords().find((r) => r.request_id === requestId && r.event === 'decision');
      expect(decision).toMatchObject({ channel: 'mcp', agent_id: ED_AGENT, agent_version: '1.4.0', path: '/mcp' });
      expect(decision!.client).toBe(era.startsWith('v2') ? 'gateway-test-v2/2.4.0' : 'gateway-test-v1/1.32.2');
    });
  });
});

/** One case, answered the same through both doors. */
describe.each(['rest', 'mcp'] as const)('one pipeline: the same cases through the %s door', (door) => {
  let gw: TestGateway;
  let held: HeldUpstream;
  const agents: Partial<Record<'deployer' | 'reader', McpAgent>> = {};

  beforeAll(async () => {
    held = await new HeldUpstream().start();
    gw = await new TestGateway({ toolLimit: { limit: 2, ttl_s: 60 }, extraTools: held.tool('slow_upstream', 300), captureLogs: true }).start();
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hello, agent\n');
    if (door === 'mcp') {
      await gw.app.listen(0, '127.0.0.1');
      const url = `http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`;
      agents.deployer = await connect(url, MCP_DEPLOY_TOKEN, 'v2 client (2026-07-28)');
      agents.reader = await connect(url, MCP_READER_TOKEN, 'v1.32 client (2025-11-25)');
    }
  });
  afterAll(async () => {
    await agents.deployer?.close();
    await agents.reader?.close();
    await gw.stop();
    await held.stop();
  });

  let counter = 0;
  /** What the agent learns, whichever door: the status, the reason, the result or approval. */
  async function call(tool: string, args: Record<string, unknown>, as: 'deployer' | 'reader' = 'deployer') {
    const requestId = `table-${door}-${++counter}`;
    if (door === 'rest') {
      const res = await gw.call(tool, args, { requestId, agent: as === 'reader' ? ED_AGENT : HMAC_AGENT, version: as === 'reader' ? '1.4.0' : '1.0.0' });
      const { status, reason_code, result, approval_id } = res.body;
      return { requestId, status, reason_code, result, approval_id };
    }
    const res = await agents[as]!.call(tool, args, { requestId });
    const s = res.structuredContent ?? {};
    if (!res.isError) return { requestId, status: 'executed', reason_code: undefined, result: s, approval_id: undefined };
    return { requestId, status: s.status, reason_code: s.reason_code, result: undefined, approval_id: s.approval_id as string | undefined };
  }

  /** The approval as the agent collects it: GET /api/approvals/{id} (REST) or approval_status (MCP). */
  async function collect(approvalId: string) {
    if (door === 'rest') return (await gw.get(`/api/approvals/${approvalId}`)).body;
    return (await agents.deployer!.call('approval_status', { approval_id: approvalId })).structuredContent!;
  }

  const eventsOf = (requestId: string) =>
    gw
      .auditRecords()
      .filter((r) => r.request_id === requestId)
      .map((r) => [r.event, r.channel, r.status ?? r.decision]);

  it.each([
    [
      'an allowed read',
      'deployer',
      'read_file',
      { path: 'hello.txt' },
      'executed',
      undefined,
      [
        ['decision', 'allow'],
        ['outcome', 'executed'],
      ],
    ],
    ['a role not allowed', 'reader', 'write_now', { path: 'r.txt', content: 'x' }, 'denied', 'tool_not_allowed_for_role', [['decision', 'denied']]],
    [
      'a forbidden field at depth',
      'deployer',
      'configure',
      { path: 'x', a: { b: [{ c: { webhook_url: 'https://x.example' } }] } },
      'denied',
      'forbidden_field',
      [['decision', 'denied']],
    ],
    ['arguments against the schema', 'deployer', 'read_file', { path: 3 }, 'invalid_arguments', 'invalid_arguments', [['decision', 'invalid_arguments']]],
    ['an unregistered tool', 'deployer', 'rm_rf', {}, 'denied', 'tool_not_registered', [['decision', 'denied']]],
    ['a path out of the workspace', 'deployer', 'read_file', { path: '../etc/passwd' }, 'denied', 'path_outside_workspace', [['decision', 'denied']]],
    [
      'a missing file',
      'deployer',
      'read_file',
      { path: 'nope.txt' },
      'tool_error',
      'tool_error',
      [
        ['decision', 'allow'],
        ['outcome', 'tool_error'],
      ],
    ],
    [
      'an upstream that does not answer in time',
      'deployer',
      'slow_upstream',
      {},
      'tool_timeout',
      'tool_timeout',
      [
        ['decision', 'allow'],
        ['outcome', 'tool_timeout'],
      ],
    ],
  ])('%s', async (_what, as, tool, args, status, reason, events) => {
    const answer = await call(tool, args, as as 'deployer' | 'reader');
    expect({ status: answer.status, reason_code: answer.reason_code }).toEqual({ status, reason_code: reason });
    expect(eventsOf(answer.requestId)).toEqual(events.map(([event, state]) => [event, door, state]));
    if (status === 'executed') expect((answer.result as { content: string }).content).toBe('hello, agent\n');
  });

  it('waits for approval, runs once approved, and the agent collects the result', async () => {
    const asked = await call('write_file', { path: 'approved.txt', content: 'yes' });
    expect(asked.status).toBe('pending_approval');
    expect(existsSync(join(gw.workspace, 'approved.txt'))).toBe(false);
    expect((await gw.asApprover().decide(asked.approval_id, true)).status).toBe(200);
    expect(await collect(asked.approval_id)).toMatchObject({ status: 'executed', result: { path: '/workspace/approved.txt', size: 3 } });
    expect(readFileSync(join(gw.workspace, 'approved.txt'), 'utf8')).toBe('yes');
    // The approver's decision and its outcome are recorded under the same request_id (an approver's request has no door).
    expect(eventsOf(asked.requestId)).toEqual([
      ['decision', door, 'pending'],
      ['outcome', door, 'pending_approval'],
      ['approval', undefined, 'allow'],
      ['outcome', undefined, 'executed'],
    ]);
  });

  it('waits for approval and runs nothing when rejected', async () => {
    const asked = await call('delete_file', { path: 'hello.txt' });
    expect((await gw.asApprover().decide(asked.approval_id, false, 'no')).status).toBe(200);
    expect(await collect(asked.approval_id)).toMatchObject({ status: 'rejected' });
    expect(existsSync(join(gw.workspace, 'hello.txt'))).toBe(true);
  });

  it('spends the same per-tool rate limit (2 a minute) and answers rate_limited on call 3', async () => {
    expect((await call('limited_read', { path: 'hello.txt' })).status).toBe('executed');
    expect((await call('limited_read', { path: 'hello.txt' })).status).toBe('executed');
    expect(await call('limited_read', { path: 'hello.txt' })).toMatchObject({ status: 'rate_limited', reason_code: 'rate_limited' });
  });

  it('leaves a chain that verifies, and no token or key in any log line or record', async () => {
    expect(await verifyAuditLog(gw.auditFile, { key: Buffer.from(AUDIT_KEY) })).toMatchObject({ ok: true });
    const everything = readFileSync(gw.auditFile, 'utf8') + gw.logLines.join('');
    for (const secret of [MCP_DEPLOY_TOKEN, MCP_READER_TOKEN, HMAC_SECRET, AUDIT_KEY]) expect(everything).not.toContain(secret);
  });
});

describe.each(['rest', 'mcp'] as const)('the %s door with the policy engine down (OPA stand-in closed)', (door) => {
  it('fails closed: 503 policy_unavailable, nothing runs', async () => {
    const closed = await freePort();
    const gw = await new TestGateway({ opa: { url: `http://127.0.0.1:${closed}`, timeoutMs: 200 } }).start();
    try {
      let status: unknown;
      if (door === 'rest') status = (await gw.call('write_now', { path: 'opa.txt', content: 'x' })).body.status;
      else {
        await gw.app.listen(0, '127.0.0.1');
        const agent = await connect(
          `http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`,
          MCP_DEPLOY_TOKEN,
          'v2 client (2026-07-28)',
        );
        status = (await agent.call('write_now', { path: 'opa.txt', content: 'x' })).structuredContent!.status;
        await agent.close();
      }
      expect(status).toBe('policy_unavailable');
      expect(existsSync(join(gw.workspace, 'opa.txt'))).toBe(false);
    } finally {
      await gw.stop();
    }
  });
});

describe('shared state across the doors', () => {
  let gw: TestGateway;
  let mcp: McpAgent;
  beforeAll(async () => {
    gw = await new TestGateway({ agentLimit: { limit: 3, ttl_s: 60 }, maxPending: 1 }).start();
    await gw.app.listen(0, '127.0.0.1');
    mcp = await connect(`http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`, MCP_DEPLOY_TOKEN, 'v2 client (2026-07-28)');
  });
  afterAll(async () => {
    await mcp.close();
    await gw.stop();
  });

  it("counts one agent limit and one pending cap whichever door is used; approval_status collects the outcome, and not another agent's", async () => {
    const rest = await gw.call('write_file', { path: 'a.txt', content: 'via rest' });
    expect(rest.status).toBe(202);
    const second = await mcp.call('write_file', { path: 'b.txt', content: 'via mcp' });
    expect(second.structuredContent).toMatchObject({ status: 'rate_limited', reason_code: 'too_many_pending' });

    const reader = await connect(
      `http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`,
      MCP_READER_TOKEN,
      'v1.32 client (2025-11-25)',
    );
    expect((await reader.call('approval_status', { approval_id: rest.body.approval_id })).structuredContent).toMatchObject({
      status: 'not_found',
      reason_code: 'not_found',
    });
    await reader.close();

    expect((await gw.asApprover().decide(rest.body.approval_id, true)).status).toBe(200);
    const status = await mcp.call('approval_status', { approval_id: rest.body.approval_id });
    expect(status).toMatchObject({
      isError: false,
      structuredContent: { approval_id: rest.body.approval_id, status: 'executed', result: { path: '/workspace/a.txt' } },
    });

    // Three calls in all used the agent's limit of 3: the next one, through either door, is refused.
    expect((await mcp.call('approval_status', { approval_id: 'approv_nope' })).structuredContent).toMatchObject({ status: 'rate_limited' });
    expect((await gw.call('read_file', { path: 'a.txt' })).status).toBe(429);
  });
});
