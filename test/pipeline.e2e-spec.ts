import { TestGateway } from './support/test-gateway';

/** What the pipeline records and keeps, whichever door (the doors' own suites run the same cases through both). */
describe('the tool-call pipeline: records and replay keys', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await new TestGateway({ maxPending: 1, toolLimit: { limit: 1, ttl_s: 60 } }).start();
  });
  afterAll(() => gw.stop());

  const recordsOf = (requestId: string) => gw.auditRecords().filter((r) => r.request_id === requestId);

  it('does not keep a 429 too_many_pending for replays: nothing was filed, so the same request is judged afresh', async () => {
    const first = await gw.call('write_file', { path: 'a.txt', content: 'a' });
    expect(first.status).toBe(202);
    const refused = await gw.call('write_file', { path: 'b.txt', content: 'b' }, { requestId: 'req_cap_retry' });
    expect([refused.status, refused.body.reason_code]).toEqual([429, 'too_many_pending']);

    expect((await gw.asApprover().decide(first.body.approval_id, false)).status).toBe(200);
    const retried = await gw.call('write_file', { path: 'b.txt', content: 'b' }, { requestId: 'req_cap_retry' });
    expect(retried.status).toBe(202);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
  });

  it('records a policy refusal as the deny decision, with arguments, and a rate-limited call as a refused request, without', async () => {
    const denied = await gw.call('configure', { path: 'x', webhook_url: 'https://x.example' }, { requestId: 'req_policy_deny' });
    expect(denied.status).toBe(403);
    expect(recordsOf('req_policy_deny')).toEqual([
      expect.objectContaining({ event: 'decision', decision: 'deny', channel: 'rest', reason_code: 'forbidden_field', arguments: expect.any(Object) }),
    ]);

    expect((await gw.call('limited_read', { path: 'x' })).status).not.toBe(429);
    const limited = await gw.call('limited_read', { path: 'x' }, { requestId: 'req_rate_limited' });
    expect(limited.status).toBe(429);
    const [record] = recordsOf('req_rate_limited');
    expect(record).toMatchObject({ event: 'request', status: 'rate_limited', channel: 'rest' });
    expect(record).not.toHaveProperty('decision');
    expect(record).not.toHaveProperty('arguments');
  });

  it('records refusals before the pipeline with their door', async () => {
    const unsigned = await gw.http().post('/api/tools/call').set('Content-Type', 'application/json').send('{}');
    expect(unsigned.status).toBe(401);
    expect(gw.auditRecords().find((r) => r.audit_id === unsigned.body.audit_id)).toMatchObject({ event: 'request', channel: 'rest', http_status: 401 });
  });
});
