import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { TestGateway } from './support/test-gateway';

type Mode =
  | 'allow'
  | 'deny'
  | 'approval'
  | 'allow_bare'
  | 'deny_bare'
  | 'slow'
  | 'undefined'
  | 'garbage'
  | 'error'
  | 'incomplete'
  | 'no_allow'
  | 'approval_not_boolean'
  | 'bad_reason_code';

/**
 * A STAND-IN FOR OPA (OPA cannot be installed on these machines): an HTTP server that answers
 * POST /v1/data/gateway/tools/decision and GET /health in the shape of OPA's Data API.
 */
class OpaStandIn {
  mode: Mode = 'allow';
  readonly requests: Array<{ method: string; url: string; contentType?: string; body: unknown }> = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        if (req.url === '/health') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        this.requests.push({ method: req.method!, url: req.url!, contentType: req.headers['content-type'], body: raw ? JSON.parse(raw) : undefined });
        const send = (status: number, body: string) => res.writeHead(status, { 'content-type': 'application/json' }).end(body);
        switch (this.mode) {
          case 'allow':
            return send(200, JSON.stringify({ result: { allow: true, requires_approval: false, reason_code: 'allowed' } }));
          case 'approval':
            return send(200, JSON.stringify({ result: { allow: true, requires_approval: true, reason_code: 'allowed' } }));
          case 'deny':
            return send(200, JSON.stringify({ result: { allow: false, requires_approval: false, reason_code: 'outside_business_hours' } }));
          case 'allow_bare':
            return send(200, JSON.stringify({ result: { allow: true } }));
          case 'deny_bare':
            return send(200, JSON.stringify({ result: { allow: false } }));
          case 'undefined':
            return send(200, '{}');
          case 'garbage':
            return send(200, '<html>not json');
          case 'incomplete':
            return send(200, JSON.stringify({ result: { allow: 'yes' } }));
          case 'no_allow':
            return send(200, JSON.stringify({ result: { requires_approval: false, reason_code: 'allowed' } }));
          case 'approval_not_boolean':
            return send(200, JSON.stringify({ result: { allow: true, requires_approval: 'no' } }));
          case 'bad_reason_code':
            return send(200, JSON.stringify({ result: { allow: false, reason_code: 'Not Allowed <b>' } }));
          case 'error':
            return send(500, JSON.stringify({ code: 'internal_error', message: 'boom' }));
          case 'slow':
            return setTimeout(() => send(200, JSON.stringify({ result: { allow: true, requires_approval: false, reason_code: 'allowed' } })), 1500);
        }
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('OPA policy engine (against a stand-in for OPA)', () => {
  const opa = new OpaStandIn();
  let gw: TestGateway;

  beforeAll(async () => {
    await opa.start();
    gw = await new TestGateway({ opa: { url: opa.url, timeoutMs: 300 } }).start();
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hi');
  });
  afterAll(async () => {
    await gw.stop();
    await opa.stop();
  });
  beforeEach(() => {
    opa.mode = 'allow';
    opa.requests.length = 0;
  });

  it('sends OPA its input (agent, tool, arguments), plus the argument keys as the gateway normalizes them', async () => {
    await gw.call('read_file', { path: 'hello.txt', nested: { n: [1, 2], 'Pаss.Word': 1 } }, { version: '1.4.0' });
    expect(opa.requests).toEqual([
      {
        method: 'POST',
        url: '/v1/data/gateway/tools/decision',
        contentType: 'application/json',
        body: {
          input: {
            agent: { id: 'agent_deploy_test', role: 'deployer', version: '1.4.0' },
            tool: 'read_file',
            arguments: { path: 'hello.txt', nested: { n: [1, 2], 'Pаss.Word': 1 } },
            // A Cyrillic "а" and a dot: folded, so the Rego policy can compare with its forbidden fields.
            argument_keys: ['n', 'nested', 'password', 'path'],
          },
        },
      },
    ]);
  });

  it('executes when OPA allows (the gateway still validates the arguments)', async () => {
    expect((await gw.call('read_file', { path: 'hello.txt' })).body.result.content).toBe('hi');
    const invalid = await gw.call('read_file', { path: 42 });
    expect([invalid.status, invalid.body.status]).toEqual([400, 'invalid_arguments']);
  });

  it("denies with OPA's reason_code, on record", async () => {
    opa.mode = 'deny';
    const res = await gw.call('read_file', { path: 'hello.txt' });
    expect([res.status, res.body.status, res.body.reason_code]).toEqual([403, 'denied', 'outside_business_hours']);
    expect(gw.auditRecords().filter((r) => r.audit_id === res.body.audit_id)).toEqual([
      expect.objectContaining({ event: 'decision', decision: 'deny', reason_code: 'outside_business_hours' }),
    ]);
  });

  it('executes when OPA answers only { "allow": true }, on record', async () => {
    opa.mode = 'allow_bare';
    const res = await gw.call('write_now', { path: 'bare-allow.txt', content: 'ran' });
    expect([res.status, res.body.status]).toEqual([200, 'executed']);
    expect(readFileSync(join(gw.workspace, 'bare-allow.txt'), 'utf8')).toBe('ran');
    expect(
      gw
        .auditRecords()
        .filter((r) => r.audit_id === res.body.audit_id)
        .map((r) => [r.event, r.decision ?? r.http_status]),
    ).toEqual([
      ['decision', 'allow'],
      ['outcome', 200],
    ]);
  });

  it('denies when OPA answers only { "allow": false }: 403 denied_by_policy, on record', async () => {
    opa.mode = 'deny_bare';
    const res = await gw.call('write_now', { path: 'bare-deny.txt', content: 'x' });
    expect([res.status, res.body.status, res.body.reason_code, res.body.error]).toEqual([403, 'denied', 'denied_by_policy', 'Denied by policy']);
    expect(existsSync(join(gw.workspace, 'bare-deny.txt'))).toBe(false);
    expect(gw.auditRecords().filter((r) => r.audit_id === res.body.audit_id)).toEqual([
      expect.objectContaining({ event: 'decision', decision: 'deny', reason_code: 'denied_by_policy' }),
    ]);
  });

  it('asks for approval when OPA says requires_approval (202)', async () => {
    opa.mode = 'approval';
    const res = await gw.call('write_now', { path: 'wait.txt', content: 'x' });
    expect([res.status, res.body.status]).toEqual([202, 'pending_approval']);
    expect(existsSync(join(gw.workspace, 'wait.txt'))).toBe(false);
  });

  it('keeps the approval the config demands even if OPA forgets it', async () => {
    const res = await gw.call('write_file', { path: 'still-waits.txt', content: 'x' });
    expect(res.status).toBe(202);
  });

  it.each([
    ['slow (over the timeout)', 'slow', 'opa_timeout'],
    ['answering undefined ({})', 'undefined', 'opa_undefined_result'],
    ['answering garbage', 'garbage', 'opa_malformed_result'],
    ['answering a result whose allow is not a boolean', 'incomplete', 'opa_malformed_result'],
    ['answering a result without allow', 'no_allow', 'opa_malformed_result'],
    ['answering a requires_approval that is not a boolean', 'approval_not_boolean', 'opa_malformed_result'],
    ['answering a reason_code that is not snake_case', 'bad_reason_code', 'opa_malformed_result'],
    ['answering HTTP 500', 'error', 'opa_error_status'],
  ] as const)('fails closed with OPA %s: 503 policy_unavailable, nothing runs, the audit says why', async (_name, mode, reason) => {
    opa.mode = mode;
    const res = await gw.call('write_now', { path: `never-${mode}.txt`, content: 'x' });
    expect([res.status, res.body.status, res.body.reason_code]).toEqual([503, 'policy_unavailable', reason]);
    expect(existsSync(join(gw.workspace, `never-${mode}.txt`))).toBe(false);
    expect(gw.auditRecords().filter((r) => r.audit_id === res.body.audit_id)).toEqual([
      expect.objectContaining({ status: 'policy_unavailable', reason_code: reason, http_status: 503 }),
    ]);
  });

  it('leaves an approval pending when OPA fails at approval time; it can be approved once OPA is back', async () => {
    opa.mode = 'approval';
    const asked = await gw.call('write_now', { path: 'after-outage.txt', content: 'approved later' });
    expect(asked.status).toBe(202);
    const id = asked.body.approval_id as string;
    opa.mode = 'error';
    const during = await gw.asApprover().decide(id, true);
    expect([during.status, during.body.status, during.body.reason_code]).toEqual([503, 'policy_unavailable', 'opa_error_status']);
    expect((await gw.asApprover().get(`/api/approvals/${id}`)).body).toMatchObject({ status: 'pending', decided_by: null });
    expect(existsSync(join(gw.workspace, 'after-outage.txt'))).toBe(false);
    opa.mode = 'allow';
    const after = await gw.asApprover().decide(id, true);
    expect([after.status, after.body.status]).toEqual([200, 'executed']);
    expect(readFileSync(join(gw.workspace, 'after-outage.txt'), 'utf8')).toBe('approved later');
    expect((await gw.asApprover().decide(id, true)).status).toBe(409);
    // Both attempts are on record: each approver decision, then its outcome.
    const recordsOf = (auditId: string) =>
      gw
        .auditRecords()
        .filter((r) => r.audit_id === auditId)
        .map((r) => [r.event, r.decision, r.http_status]);
    expect(recordsOf(during.body.audit_id)).toEqual([
      ['approval', 'allow', undefined],
      ['outcome', undefined, 503],
    ]);
    expect(recordsOf(after.body.audit_id)).toEqual([
      ['approval', 'allow', undefined],
      ['outcome', undefined, 200],
    ]);
  });

  it('fails closed when OPA is down, and /readyz says so', async () => {
    expect((await gw.http().get('/readyz')).status).toBe(200);
    const down = await new TestGateway({ opa: { url: 'http://127.0.0.1:1', timeoutMs: 300 } }).start();
    try {
      const res = await down.call('read_file', { path: 'hello.txt' });
      expect([res.status, res.body.status, res.body.reason_code]).toEqual([503, 'policy_unavailable', 'opa_unreachable']);
      const ready = await down.http().get('/readyz');
      expect([ready.status, ready.body.reason_code]).toEqual([503, 'policy_unavailable']);
    } finally {
      await down.stop();
    }
  });
});
