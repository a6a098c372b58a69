import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport, type StandardSchemaV1 } from '@modelcontextprotocol/client';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, Server, type CallToolResult } from '@modelcontextprotocol/server';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, CreateTaskResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { MCP_DEPLOY_TOKEN, MCP_READER_TOKEN, TestGateway } from './support/test-gateway';

/**
 * A pending approval as an MCP task (protocol revision 2025-11-25), through the real MCP door with
 * the official v1.32 SDK client, whose experimental task API (tasks/get, tasks/result,
 * tasks/cancel) is the one task-capable TypeScript client; the v2 client (2026-07-28) cannot take
 * a task result, and gets pending_approval and approval_status.
 */
describe('POST /mcp: a pending approval is a task', () => {
  let gw: TestGateway;
  let url: string;
  const clients: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    gw = await new TestGateway({ agentLimit: { limit: 1000, ttl_s: 60 } }).start();
    await gw.app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`;
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await gw.stop();
  });

  async function v1(token: string): Promise<V1Client> {
    const client = new V1Client({ name: 'tasks-test-v1', version: '1.32.2' });
    await client.connect(new V1Transport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    clients.push(client);
    return client;
  }

  /** tools/call with params.task: the CreateTaskResult. */
  async function callAsTask(client: V1Client, path: string, content: string) {
    return client.request({ method: 'tools/call', params: { name: 'write_file', arguments: { path, content } } }, CreateTaskResultSchema, {
      task: { ttl: 60_000 },
    });
  }

  it('advertises task support on tools that need approval, and the tasks capability (2025-11-25)', async () => {
    const client = await v1(MCP_DEPLOY_TOKEN);
    expect(client.getServerCapabilities()?.tasks).toEqual({ cancel: {}, requests: { tools: { call: {} } } });
    const tools = (await client.listTools()).tools;
    expect(tools.find((t) => t.name === 'write_file')?.execution).toEqual({ taskSupport: 'optional' });
    expect(tools.find((t) => t.name === 'read_file')?.execution).toBeUndefined();
  });

  it('returns a working task, reports it, and completes it with the tool result once approved', async () => {
    const client = await v1(MCP_DEPLOY_TOKEN);
    const created = await callAsTask(client, 'task-approved.txt', 'approved as a task');
    const { task } = created;
    expect(task).toMatchObject({ taskId: expect.stringMatching(/^approv_/), status: 'working' });
    expect(task.statusMessage).toMatch(new RegExp(`waits for a human approver \\(approval_id ${task.taskId}, until \\d{4}-`));
    expect(existsSync(join(gw.workspace, 'task-approved.txt'))).toBe(false);

    expect(await client.experimental.tasks.getTask(task.taskId)).toMatchObject({ taskId: task.taskId, status: 'working' });

    // tasks/result of a working task waits for the human, and answers once the call ran.
    let answered = false;
    const waiting = client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema).finally(() => (answered = true));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(answered).toBe(false);
    expect((await gw.asApprover().decide(task.taskId, true)).status).toBe(200);
    const result = await waiting;
    expect(result).toMatchObject({
      isError: false,
      structuredContent: { path: '/workspace/task-approved.txt', size: 18 },
      _meta: { 'io.modelcontextprotocol/related-task': { taskId: task.taskId } },
    });
    expect(readFileSync(join(gw.workspace, 'task-approved.txt'), 'utf8')).toBe('approved as a task');
    expect(await client.experimental.tasks.getTask(task.taskId)).toMatchObject({ status: 'completed' });
    // Collected again: the same result, at once.
    expect(await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema)).toMatchObject({ isError: false });
  });

  it('a tasks/result waiting for the human ends with the withdrawal when the task is cancelled', async () => {
    const client = await v1(MCP_DEPLOY_TOKEN);
    const { task } = await callAsTask(client, 'task-cancel-while-waiting.txt', 'never');
    const waiting = client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await client.experimental.tasks.cancelTask(task.taskId)).toMatchObject({ status: 'cancelled' });
    expect(await waiting).toMatchObject({ isError: true, structuredContent: { status: 'withdrawn', reason_code: 'withdrawn' } });
    expect(existsSync(join(gw.workspace, 'task-cancel-while-waiting.txt'))).toBe(false);
  });

  it("the SDK's own task loop (callToolStream) waits through the approval and yields the tool's result", async () => {
    const client = await v1(MCP_DEPLOY_TOKEN);
    await client.listTools(); // the client learns which tools take tasks
    const seen: string[] = [];
    let result: unknown;
    for await (const message of client.experimental.tasks.callToolStream({
      name: 'write_file',
      arguments: { path: 'task-streamed.txt', content: 'streamed' },
    })) {
      seen.push(message.type === 'taskStatus' ? `taskStatus:${message.task.status}` : message.type);
      if (message.type === 'taskCreated') expect((await gw.asApprover().decide(message.task.taskId, true)).status).toBe(200);
      if (message.type === 'result') result = message.result;
      if (message.type === 'error') throw message.error;
    }
    expect(seen).toEqual(['taskCreated', 'taskStatus:completed', 'result']);
    expect(result).toMatchObject({ isError: false, structuredContent: { path: '/workspace/task-streamed.txt' } });
    expect(readFileSync(join(gw.workspace, 'task-streamed.txt'), 'utf8')).toBe('streamed');
  });

  it("another agent's tasks/get, tasks/result and tasks/cancel for that id: not found", async () => {
    const owner = await v1(MCP_DEPLOY_TOKEN);
    const { task } = await callAsTask(owner, 'task-other-agent.txt', 'mine');
    const other = await v1(MCP_READER_TOKEN);
    await expect(other.experimental.tasks.getTask(task.taskId)).rejects.toThrow(/Task not found/);
    await expect(other.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema)).rejects.toThrow(/Task not found/);
    await expect(other.experimental.tasks.cancelTask(task.taskId)).rejects.toThrow(/Task not found/);
    expect(await owner.experimental.tasks.getTask(task.taskId)).toMatchObject({ status: 'working' });
  });

  it('a rejected approval fails the task, and its result is the rejection', async () => {
    const client = await v1(MCP_DEPLOY_TOKEN);
    const { task } = await callAsTask(client, 'task-rejected.txt', 'no');
    expect((await gw.asApprover().decide(task.taskId, false)).status).toBe(200);
    expect(await client.experimental.tasks.getTask(task.taskId)).toMatchObject({ status: 'failed', statusMessage: expect.stringMatching(/^rejected by /) });
    expect(await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema)).toMatchObject({
      isError: true,
      structuredContent: { status: 'rejected', reason_code: 'rejected' },
    });
    expect(existsSync(join(gw.workspace, 'task-rejected.txt'))).toBe(false);
  });

  it('tasks/cancel withdraws the approval: shown withdrawn, no longer approvable, and audited', async () => {
    const client = await v1(MCP_DEPLOY_TOKEN);
    const { task } = await callAsTask(client, 'task-cancelled.txt', 'never');
    const cancelled = await client.experimental.tasks.cancelTask(task.taskId);
    expect(cancelled).toMatchObject({ taskId: task.taskId, status: 'cancelled' });
    expect(await client.experimental.tasks.getTask(task.taskId)).toMatchObject({ status: 'cancelled' });

    const view = await gw.asApprover().get(`/api/approvals/${task.taskId}`);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ approval_id: task.taskId, status: 'withdrawn' });
    const listed = await gw.asApprover().get('/api/approvals?status=withdrawn');
    expect(listed.body.approvals.map((a: { approval_id: string }) => a.approval_id)).toContain(task.taskId);

    const approve = await gw.asApprover().decide(task.taskId, true);
    expect(approve.status).toBe(409);
    expect(approve.body).toMatchObject({ reason_code: 'already_decided' });
    expect(existsSync(join(gw.workspace, 'task-cancelled.txt'))).toBe(false);

    const records = gw.auditRecords().filter((r) => r.approval_id === task.taskId && r.event === 'approval');
    expect(records).toEqual([
      expect.objectContaining({
        event: 'approval',
        status: 'withdrawn',
        agent_id: 'agent_deploy_test',
        tool: 'write_file',
        channel: 'mcp',
        arguments_sha256: expect.any(String),
      }),
    ]);
    // A withdrawn task cannot be cancelled again.
    await expect(client.experimental.tasks.cancelTask(task.taskId)).rejects.toThrow(/already decided \(withdrawn\)/);
  });

  it('a client without tasks still gets pending_approval (v1.32)', async () => {
    const old = await v1(MCP_DEPLOY_TOKEN);
    const plain = (await old.callTool({ name: 'write_file', arguments: { path: 'task-plain-v1.txt', content: 'x' } }, CallToolResultSchema)) as {
      isError?: boolean;
      structuredContent?: Record<string, unknown>;
    };
    expect(plain).toMatchObject({ isError: true, structuredContent: { status: 'pending_approval', approval_id: expect.any(String) } });
    expect(plain).not.toHaveProperty('task');
  });

  it('a 2026-07-28 client that declares the tasks extension gets pending_approval and collects it with approval_status', async () => {
    const modern = new Client(
      { name: 'tasks-test-v2', version: '2.4.0' },
      { versionNegotiation: { mode: 'auto' }, capabilities: { extensions: { 'io.modelcontextprotocol/tasks': {} } } },
    );
    await modern.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${MCP_DEPLOY_TOKEN}` } } }));
    clients.push(modern);
    expect(modern.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    // The 2026-07-28 codec carries neither execution.taskSupport nor the tasks capability.
    expect((await modern.listTools()).tools.find((t) => t.name === 'write_file')).not.toHaveProperty('execution');
    expect(modern.getServerCapabilities()).not.toHaveProperty('tasks');

    const answer = await modern.callTool({ name: 'write_file', arguments: { path: 'task-plain-v2.txt', content: 'v2' } }, { timeout: 30_000 });
    expect(answer).toMatchObject({ isError: true, structuredContent: { status: 'pending_approval', approval_id: expect.stringMatching(/^approv_/) } });
    const approvalId = (answer.structuredContent as { approval_id: string }).approval_id;

    // The extension's methods are not served on this revision, whatever the client declares.
    const anything: StandardSchemaV1<unknown, unknown> = { '~standard': { version: 1, vendor: 'test', validate: (value) => ({ value }) } };
    await expect(modern.request({ method: 'tasks/get', params: { taskId: approvalId } }, anything)).rejects.toThrow(/Method not found/);
    await expect(modern.request({ method: 'tasks/cancel', params: { taskId: approvalId } }, anything)).rejects.toThrow(/Method not found/);

    expect((await gw.asApprover().decide(approvalId, true)).status).toBe(200);
    const status = await modern.callTool({ name: 'approval_status', arguments: { approval_id: approvalId } });
    expect(status).toMatchObject({
      isError: false,
      structuredContent: { approval_id: approvalId, status: 'executed', result: { path: '/workspace/task-plain-v2.txt' } },
    });
    expect(readFileSync(join(gw.workspace, 'task-plain-v2.txt'), 'utf8')).toBe('v2');
  });

  it("the SDK's 2026-07-28 client refuses a task result (why the tasks extension is not served)", async () => {
    // A bare SDK server that answers tools/call with the extension's task result.
    const handler = createMcpHandler(() => {
      const server = new Server({ name: 'task-result', version: '1' }, { capabilities: { tools: {} } });
      server.setRequestHandler('tools/call', async () => {
        const now = new Date().toISOString();
        return { resultType: 'task', taskId: 't1', status: 'working', createdAt: now, lastUpdatedAt: now, ttlMs: 60_000 } as unknown as CallToolResult;
      });
      return server;
    });
    const node = toNodeHandler(handler);
    const bare = createServer((req, res) => void node(req, res));
    await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
    const client = new Client(
      { name: 'tasks-test-v2', version: '2.4.0' },
      { versionNegotiation: { mode: 'auto' }, capabilities: { extensions: { 'io.modelcontextprotocol/tasks': {} } } },
    );
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${(bare.address() as AddressInfo).port}/mcp`)));
      expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
      await expect(client.callTool({ name: 'any', arguments: {} })).rejects.toMatchObject({ code: 'UNSUPPORTED_RESULT_TYPE' });
    } finally {
      await client.close().catch(() => undefined);
      await handler.close();
      bare.close();
    }
  });
});

/** tasks/result waits for the human only as long and as often as a tools/call with a progressToken may. */
describe('POST /mcp: tasks/result waits, within bounds', () => {
  const WAIT_S = 2;
  let gw: TestGateway;
  let url: string;
  const clients: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    gw = await new TestGateway({ agentLimit: { limit: 1000, ttl_s: 60 }, mcp: { approvalWaitS: WAIT_S } }).start();
    await gw.app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`;
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await gw.stop();
  });

  async function deployer(): Promise<V1Client> {
    const client = new V1Client({ name: 'tasks-test-v1', version: '1.32.2' });
    await client.connect(new V1Transport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${MCP_DEPLOY_TOKEN}` } } }));
    clients.push(client);
    return client;
  }
  const taskFor = async (client: V1Client, path: string) =>
    (
      await client.request({ method: 'tools/call', params: { name: 'write_file', arguments: { path, content: 'x' } } }, CreateTaskResultSchema, {
        task: { ttl: 60_000 },
      })
    ).task;

  it('answers "no result yet" once approval_wait_s has passed without a decision', async () => {
    const client = await deployer();
    const task = await taskFor(client, 'bounded-wait.txt');
    const started = Date.now();
    await expect(client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema)).rejects.toThrow(
      new RegExp(`Task ${task.taskId} has no result yet \\(waits for a human approver .*\\) after waiting ${WAIT_S} s; call tasks/result again`),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(WAIT_S * 1000 - 100);
    expect(await client.experimental.tasks.getTask(task.taskId)).toMatchObject({ status: 'working' });
  });

  it('shares the waiting caps with tools/call: over the per-agent cap it answers at once', async () => {
    const client = await deployer();
    const task = await taskFor(client, 'capped-task.txt');
    // Two calls that wait for a human with a progressToken fill the agent's cap (2); each says so with a progress report.
    let reported = 0;
    const waitingCalls = [1, 2].map((n) =>
      client.callTool({ name: 'write_file', arguments: { path: `capped-call-${n}.txt`, content: 'x' } }, CallToolResultSchema, {
        onprogress: () => void (reported += 1),
      }),
    );
    const until = Date.now() + 10_000;
    while (reported < 2 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(reported).toBeGreaterThanOrEqual(2);

    const started = Date.now();
    await expect(client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema)).rejects.toThrow(/too many requests wait for a human now/);
    expect(Date.now() - started).toBeLessThan(1000);
    for (const answer of await Promise.all(waitingCalls)) expect(answer).toMatchObject({ structuredContent: { status: 'pending_approval' } });
  });
});
