import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { verifyAuditLog } from '../src/audit/audit-verify';
import { AUDIT_KEY, HMAC_AGENT, MCP_DEPLOY_TOKEN, TestGateway } from './support/test-gateway';

/** `{"a":{"a":…{}}}`, `levels` objects deep, as text (deeper than JSON.stringify can go). */
const nested = (levels: number) => `${'{"a":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`;
const call = (params: string, extra = '') => `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":${params}${extra}}`;
const LIST = '"name":"list_dir","arguments":{"path":"."}';

type Reply = { jsonrpc: string; id: unknown; error: { code: number; message: string; data: { status: string; reason_code: string; audit_id: string } } };

/**
 * Issue 20, finding 6: a tools/call the MCP SDK would refuse before the pipeline sees it is
 * refused by the door itself, with a 4xx (never 500), a JSON-RPC error naming the reason, and a
 * record in the audit log like every other call of an authenticated agent.
 */
describe('POST /mcp: malformed tool calls are refused with a reason and recorded', () => {
  let gw: TestGateway;
  let url: string;

  beforeAll(async () => {
    gw = await new TestGateway({ maxBodyBytes: 1_000_000 }).start();
    await gw.app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`;
  });
  afterAll(() => gw.stop());

  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${MCP_DEPLOY_TOKEN}`,
        'mcp-protocol-version': '2025-11-25',
        ...headers,
      },
      body,
    });

  const recordOf = async (auditId: string) => {
    const found = await gw.asApprover().get(`/api/audit?audit_id=${auditId}`);
    expect(found.status).toBe(200);
    return found.body.records as Array<Record<string, unknown>>;
  };

  it.each([
    ['arguments as an array', call(`{"name":"list_dir","arguments":["."]}`), -32602, 'invalid_params'],
    ['arguments as a string', call(`{"name":"list_dir","arguments":"."}`), -32602, 'invalid_params'],
    ['a numeric name', call(`{"name":42,"arguments":{}}`), -32602, 'invalid_params'],
    ['no name', call(`{"arguments":{}}`), -32602, 'invalid_params'],
    ['a task that is not an object', call(`{${LIST},"task":"soon"}`), -32602, 'invalid_params'],
    ['no params', '{"jsonrpc":"2.0","id":7,"method":"tools/call"}', -32602, 'invalid_params'],
    ['params as an array', call('["list_dir"]'), -32600, 'invalid_jsonrpc_request'],
    ['_meta as a string', call(`{${LIST},"_meta":"x"}`), -32600, 'invalid_jsonrpc_request'],
    ['an object as progressToken', call(`{${LIST},"_meta":{"progressToken":{}}}`), -32600, 'invalid_jsonrpc_request'],
    ['no jsonrpc member', `{"id":7,"method":"tools/call","params":{${LIST}}}`, -32600, 'invalid_jsonrpc_request'],
    ['an unknown member', call(`{${LIST}}`, ',"extra":1'), -32600, 'invalid_jsonrpc_request'],
    ['no id (a tools/call sent as a notification)', `{"jsonrpc":"2.0","method":"tools/call","params":{${LIST}}}`, -32600, 'invalid_jsonrpc_request'],
    ['a huge nested _meta', call(`{${LIST},"_meta":{"x":${nested(20_000)}}}`), -32600, 'message_too_deep'],
    ['a huge nested array in _meta', call(`{${LIST},"_meta":{"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`), -32600, 'message_too_deep'],
    ['arguments nested 20,000 levels', call(`{"name":"list_dir","arguments":${nested(20_000)}}`), -32602, 'arguments_too_deep'],
    ['a huge nested unknown member', call(`{${LIST}}`, `,"x":${nested(20_000)}`), -32600, 'message_too_deep'],
  ])('%s: 400, a JSON-RPC error with its reason_code, and a refusal record', async (_what, body, code, reason) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    const reply = (await res.json()) as Reply;
    expect(reply).toMatchObject({ jsonrpc: '2.0', error: { code, data: { status: 'invalid_request', reason_code: reason } } });
    expect(reply.id).toBe(/"id":7/.test(body.slice(0, 40)) ? 7 : null);
    expect(reply.error.message).toContain(reason);
    expect(await recordOf(reply.error.data.audit_id)).toEqual([
      expect.objectContaining({
        event: 'request',
        channel: 'mcp',
        path: '/mcp',
        agent_id: HMAC_AGENT,
        agent_version: '1.0.0',
        status: 'invalid_request',
        reason_code: reason,
        http_status: 400,
      }),
    ]);
  });

  it('a batch with one malformed call: nothing in it runs, every call in it is recorded, each message answered', async () => {
    const before = gw.auditRecords().length;
    const res = await post(
      JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'write_now', arguments: { path: 'batch.txt', content: 'ran' } } },
        { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'list_dir', arguments: ['.'] } },
        { jsonrpc: '2.0', id: 3, method: 'tools/list', params: {} },
      ]),
    );
    expect(res.status).toBe(400);
    const replies = (await res.json()) as Reply[];
    expect(replies.map((r) => [r.id, r.error.code, r.error.data.reason_code])).toEqual([
      [1, -32600, 'batch_refused'],
      [2, -32602, 'invalid_params'],
      [3, -32600, 'batch_refused'],
    ]);
    expect(existsSync(join(gw.workspace, 'batch.txt'))).toBe(false);
    const added = gw.auditRecords().slice(before);
    expect(added.map((r) => [r.audit_id, r.reason_code])).toEqual(
      expect.arrayContaining([
        [replies[0].error.data.audit_id, 'batch_refused'],
        [replies[1].error.data.audit_id, 'invalid_params'],
      ]),
    );
    expect(added).toHaveLength(2); // tools/list is not a call
  });

  it('a huge nested message that is not a tool call: 400 message_too_deep, and still one record', async () => {
    const res = await post(`{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{"_meta":{"x":${nested(20_000)}}}}`);
    expect(res.status).toBe(400);
    const reply = (await res.json()) as Reply;
    expect(reply).toMatchObject({ id: 8, error: { code: -32600, data: { reason_code: 'message_too_deep' } } });
    expect(await recordOf(reply.error.data.audit_id)).toEqual([
      expect.objectContaining({ agent_id: HMAC_AGENT, reason_code: 'message_too_deep', http_status: 400 }),
    ]);
  });

  it('a body that is not JSON, from an authenticated agent: a JSON-RPC parse error, on record', async () => {
    const res = await post('{"jsonrpc":"2.0","id":9,"method":"tools/call",');
    expect(res.status).toBe(400);
    const reply = (await res.json()) as Reply;
    expect(reply).toMatchObject({ id: null, error: { code: -32700, data: { status: 'invalid_request' } } });
    expect(await recordOf(reply.error.data.audit_id)).toEqual([expect.objectContaining({ agent_id: HMAC_AGENT, channel: 'mcp', http_status: 400 })]);
  });

  it('2026-07-28: a tools/call the SDK refuses for its headers (Mcp-Name names another tool) is on record too', async () => {
    const before = gw.auditRecords().length;
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: {
        name: 'list_dir',
        arguments: { path: '.' },
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1.0.0' },
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    });
    const res = await post(body, { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'read_file' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('Mcp-Name');
    expect(gw.auditRecords().slice(before)).toEqual([
      expect.objectContaining({ event: 'request', channel: 'mcp', agent_id: HMAC_AGENT, reason_code: 'invalid_mcp_request', http_status: 400 }),
    ]);
  });

  it('well-formed calls still reach the pipeline, and the chain holds', async () => {
    const res = await post(call(`{${LIST},"_meta":{"x":${nested(20)}}}`));
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('"isError":false');
    await expect(verifyAuditLog(gw.auditFile, { key: Buffer.from(AUDIT_KEY) })).resolves.toMatchObject({ ok: true });
  });
});
