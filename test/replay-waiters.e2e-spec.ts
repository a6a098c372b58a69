import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Agent } from 'undici';
import { MCP_DEPLOY_TOKEN, TestGateway } from './support/test-gateway';

type ToolResult = { isError?: boolean; structuredContent?: Record<string, unknown> };
type FloodAnswer = { status: number; isError?: boolean; toolStatus?: string; approvalId?: string };

/**
 * `count` raw tools/call requests, all at once, each with a progressToken and the same request_id,
 * sent by a separate Node process over its own sockets; how long until the last was answered.
 */
function floodFromAnotherProcess(
  url: string,
  count: number,
  params: object,
  requestId: string,
): { sending: Promise<void>; done: Promise<{ totalMs: number; answers: FloodAnswer[] }> } {
  const script = `
    const [url, token, count, params, requestId] = JSON.parse(process.argv[1]);
    const call = async (i) => {
      const res = await fetch(url, { method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json',
        accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { ...params, _meta: { 'io.agent-gateway/request_id': requestId, progressToken: 'p' + i } } }) });
      const text = await res.text();
      const messages = text.startsWith('{') ? [JSON.parse(text)] : text.split('\\n').filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)));
      const result = messages.find((m) => 'result' in m)?.result ?? {};
      return { status: res.status, isError: result.isError, toolStatus: result.structuredContent?.status, approvalId: result.structuredContent?.approval_id };
    };
    const started = performance.now();
    process.stderr.write('sending\\n');
    Promise.all(Array.from({ length: count }, (_, i) => call(i))).then((answers) =>
      process.stdout.write(JSON.stringify({ totalMs: performance.now() - started, answers })));
  `;
  const child = spawn(process.execPath, ['-e', script, JSON.stringify([url, MCP_DEPLOY_TOKEN, count, params, requestId])]);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  const sending = new Promise<void>((resolve) => child.stderr.on('data', (d) => (err += d).startsWith('sending') && resolve()));
  const done = new Promise<{ totalMs: number; answers: FloodAnswer[] }>((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`flood process exited ${code}: ${err}`)))),
  );
  return { sending, done };
}

/**
 * One agent must not be able to hold the gateway's connections: a replayed answer is sent at once,
 * only a few calls per agent wait for a human, and replays spend the agent's rate limit.
 */
describe('Replays and approval waits cannot take every connection', () => {
  let gw: TestGateway;
  let base: string;
  // Enough sockets for the whole burst at once, as an attacker would open them.
  const dispatcher = new Agent({ connections: 512, pipelining: 0 });

  beforeAll(async () => {
    gw = await new TestGateway({ agentLimit: { limit: 100_000, ttl_s: 60 }, mcp: { approvalWaitS: 25 } }).start();
    await gw.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await dispatcher.close();
    await gw.stop();
  });

  let rpcId = 0;
  /** A raw JSON-RPC tools/call at the MCP door, as any client (or attacker) can send it; the tool result and how long it took. */
  async function mcpCall(name: string, args: Record<string, unknown>, meta: Record<string, unknown>): Promise<{ result: ToolResult; ms: number }> {
    const started = performance.now();
    const res = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${MCP_DEPLOY_TOKEN}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-11-25',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method: 'tools/call', params: { name, arguments: args, _meta: meta } }),
      dispatcher,
    });
    const text = await res.text();
    const ms = performance.now() - started;
    expect(res.status).toBe(200);
    // JSON, or an event stream whose last message is the answer (progress notifications come first).
    const messages = res.headers.get('content-type')?.startsWith('text/event-stream')
      ? text
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => JSON.parse(line.slice(5)))
      : [JSON.parse(text)];
    return { result: messages.find((m) => 'result' in m).result as ToolResult, ms };
  }

  const timed = async <T>(work: () => Promise<T>) => {
    const started = performance.now();
    const value = await work();
    return { value, ms: performance.now() - started };
  };

  it('answers 200 concurrent replays of a pending call that ask for progress at once, while /healthz and the approvers listing stay fast', async () => {
    const requestId = 'req_flooded_pending';
    const first = await mcpCall('write_file', { path: 'flood.txt', content: 'x' }, { 'io.agent-gateway/request_id': requestId });
    expect(first.result.structuredContent).toMatchObject({ status: 'pending_approval' });

    // The flood comes from another process, as it would from an attacker: its client work does not slow the gateway's event loop.
    const flood = floodFromAnotherProcess(`${base}/mcp`, 200, { name: 'write_file', arguments: { path: 'flood.txt', content: 'x' } }, requestId);
    await flood.sending;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const [health, listing] = await Promise.all([timed(() => gw.http().get('/healthz')), timed(() => gw.asApprover().get('/api/approvals?status=pending'))]);
    const { totalMs, answers } = await flood.done;

    expect(answers).toHaveLength(200);
    expect(answers.every((a) => a.status === 200 && a.isError === true && a.toolStatus === 'pending_approval')).toBe(true);
    expect(new Set(answers.map((a) => a.approvalId))).toEqual(new Set([first.result.structuredContent!.approval_id]));
    // About a second on an idle machine; the bound leaves room for a loaded 2-core runner. A replay that waited took approval_wait_s, 25 s.
    expect(totalMs).toBeLessThan(5000);
    expect([health.value.status, listing.value.status]).toEqual([200, 200]);
    expect(health.ms).toBeLessThan(2000);
    expect(listing.ms).toBeLessThan(2000);
    expect(gw.auditRecords().filter((r) => r.request_id === requestId && r.event === 'replay')).toHaveLength(200);
  });

  it('lets only two calls per agent wait for a human; the others get the pending answer at once', async () => {
    const calls = [1, 2, 3, 4].map((n) =>
      mcpCall('write_file', { path: `wait-${n}.txt`, content: 'x' }, { 'io.agent-gateway/request_id': `req_wait_${n}`, progressToken: n }),
    );
    const settled: Array<{ result: ToolResult; ms: number }> = [];
    calls.forEach((call) => void call.then((answer) => settled.push(answer)));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // Two were answered pending without waiting; two still wait.
    expect(settled).toHaveLength(2);
    expect(settled.every(({ result, ms }) => result.structuredContent?.status === 'pending_approval' && ms < 1500)).toBe(true);

    // A human rejects everything pending: the two waiting calls end with that outcome.
    const pending = (await gw.asApprover().get('/api/approvals?status=pending')).body.approvals as Array<{ approval_id: string; arguments: { path: string } }>;
    for (const approval of pending.filter((a) => a.arguments.path.startsWith('/workspace/wait-') || a.arguments.path.startsWith('wait-'))) {
      expect((await gw.asApprover().decide(approval.approval_id, false)).status).toBe(200);
    }
    const answers = await Promise.all(calls);
    expect(answers.map(({ result }) => result.structuredContent?.status).sort()).toEqual(['pending_approval', 'pending_approval', 'rejected', 'rejected']);
  });
});

describe('A replay spends the rate limit like any call', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await new TestGateway({ agentLimit: { limit: 2, ttl_s: 60 } }).start();
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hi');
  });
  afterAll(() => gw.stop());

  it('answers a REST replay past the limit with 429 and Retry-After, not the stored answer', async () => {
    const first = await gw.call('read_file', { path: 'hello.txt' }, { requestId: 'req_replayed_to_the_limit' });
    expect(first.status).toBe(200);
    const replayed = await gw.call('read_file', { path: 'hello.txt' }, { requestId: 'req_replayed_to_the_limit' });
    expect([replayed.status, replayed.headers['idempotent-replayed']]).toEqual([200, 'true']);
    const limited = await gw.call('read_file', { path: 'hello.txt' }, { requestId: 'req_replayed_to_the_limit' });
    expect([limited.status, limited.body.reason_code, limited.headers['idempotent-replayed']]).toEqual([429, 'rate_limited', undefined]);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const events = gw.auditRecords().filter((r) => r.request_id === 'req_replayed_to_the_limit');
    expect(events.map((r) => r.event)).toEqual(['decision', 'outcome', 'replay', 'request']);
    expect(events[3]).toMatchObject({ status: 'rate_limited', http_status: 429 });
  });
});
