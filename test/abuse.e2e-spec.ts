import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { signRequestHeaders } from '../src/auth/signature';
import { storesUnderTest, TEST_REDIS_URL } from './support/services';
import { HeldUpstream } from './support/held-upstream';
import { ED_AGENT, envelope, HMAC_AGENT, TestGateway, TestGatewayOptions } from './support/test-gateway';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const stores = storesUnderTest();

beforeAll(async () => {
  if (stores.length < 2) return;
  const redis = new Redis(TEST_REDIS_URL);
  await redis.flushdb();
  redis.disconnect();
});

describe.each(stores)('Abuse controls with the %s', (_name, redisUrl) => {
  const gateways: TestGateway[] = [];
  const held = new HeldUpstream();
  beforeAll(() => held.start());
  afterAll(() => held.stop());
  const start = async (options: TestGatewayOptions = {}) => {
    const gw = await new TestGateway({ ...options, redisUrl }).start();
    gateways.push(gw);
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hi');
    return gw;
  };
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gw) => gw.stop()));
    if (redisUrl) {
      const redis = new Redis(redisUrl);
      await redis.flushdb();
      redis.disconnect();
    }
  });

  describe('per-agent rate limits', () => {
    it('answers a burst over the limit with 429 and a Retry-After it can honour', async () => {
      const gw = await start({ agentLimit: { limit: 3, ttl_s: 2 } });
      for (let i = 0; i < 3; i++) expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200);
      const limited = await gw.call('read_file', { path: 'hello.txt' });
      expect([limited.status, limited.body.status, limited.body.reason_code]).toEqual([429, 'rate_limited', 'rate_limited']);
      const retryAfter = Number(limited.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(2);
      // Another agent is not limited by this one's exhaustion.
      expect((await gw.call('read_file', { path: 'hello.txt' }, { agent: ED_AGENT })).status).toBe(200);
      await sleep(retryAfter * 1000 + 100);
      expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200);
    });

    it("limits a tool per agent with the tool's own limit", async () => {
      const gw = await start({ toolLimit: { limit: 2, ttl_s: 60 } });
      expect((await gw.call('limited_read', { path: 'hello.txt' })).status).toBe(200);
      expect((await gw.call('limited_read', { path: 'hello.txt' })).status).toBe(200);
      const limited = await gw.call('limited_read', { path: 'hello.txt' });
      expect([limited.status, limited.body.reason_code]).toEqual([429, 'rate_limited']);
      expect(limited.body.error).toContain('for this tool');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200);
    });

    it('never charges requests with a bad signature to the agent they claim to be', async () => {
      const gw = await start({ agentLimit: { limit: 3, ttl_s: 60 } });
      for (let i = 0; i < 10; i++) {
        const raw = JSON.stringify(envelope(HMAC_AGENT, 'read_file', { path: 'hello.txt' }));
        const forged = signRequestHeaders(HMAC_AGENT, { alg: 'hmac-sha256', secret: 'not-the-agents-secret' }, 'POST', '/api/tools/call', raw);
        expect(
          (
            await gw
              .http()
              .post('/api/tools/call')
              .set({ ...forged, 'Content-Type': 'application/json' })
              .send(raw)
          ).status,
        ).toBe(401);
      }
      for (let i = 0; i < 3; i++) expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200);
    });

    it('checks in this order once the limit is spent: unsigned 401, bad envelope 400, a replay 429 like any call', async () => {
      const gw = await start({ agentLimit: { limit: 1, ttl_s: 60 } });
      const first = await gw.call('read_file', { path: 'hello.txt' }, { requestId: 'req_order_1' });
      expect(first.status).toBe(200);
      expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(429);
      const unsigned = await gw.http().post('/api/tools/call').set('Content-Type', 'application/json').send('{}');
      expect([unsigned.status, unsigned.body.reason_code]).toEqual([401, 'missing_signature']);
      const badEnvelope = await gw.post('/api/tools/call', { agent_id: HMAC_AGENT });
      expect([badEnvelope.status, badEnvelope.body.reason_code]).toEqual([400, 'invalid_envelope']);
      const replay = await gw.call('read_file', { path: 'hello.txt' }, { requestId: 'req_order_1' });
      expect([replay.status, replay.headers['idempotent-replayed']]).toEqual([429, undefined]);
    });
  });

  it('limits failed authentications per client address (429 with Retry-After), then refuses the address before any credentials are checked', async () => {
    const gw = await start({ ipLimit: { limit: 3, ttl_s: 60 } });
    for (let i = 0; i < 3; i++) expect((await gw.http().post('/api/tools/call').set('Content-Type', 'application/json').send('{}')).status).toBe(401);
    const blocked = await gw.http().post('/api/tools/call').set('Content-Type', 'application/json').send('{}');
    expect([blocked.status, blocked.body.status, blocked.body.reason_code]).toEqual([429, 'rate_limited', 'rate_limited']);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const wrongToken = await gw.asApprover('guessing').get('/api/approvals');
    expect(wrongToken.status).toBe(429);
    expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(429);
  });

  describe('replay and idempotency', () => {
    it('answers a repeated request with the stored first response, never running it again, each counted against the limit', async () => {
      const gw = await start({ agentLimit: { limit: 7, ttl_s: 60 } });
      const first = await gw.call('write_now', { path: 'once.txt', content: 'v1' }, { requestId: 'req_write_once' });
      expect(first.status).toBe(200);
      writeFileSync(join(gw.workspace, 'once.txt'), 'changed since');
      for (let i = 0; i < 5; i++) {
        const again = await gw.call('write_now', { path: 'once.txt', content: 'v1' }, { requestId: 'req_write_once' });
        expect(again.status).toBe(200);
        expect(again.body).toEqual(first.body);
        expect(again.headers['idempotent-replayed']).toBe('true');
      }
      expect(readFileSync(join(gw.workspace, 'once.txt'), 'utf8')).toBe('changed since');
      expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200); // the 7th of 7: the first call and 5 replays came before
      expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(429);
      expect(gw.auditRecords().filter((r) => r.event === 'replay')).toHaveLength(5);
    });

    it('replays refusals too (a denied call stays denied), but not a 429', async () => {
      const gw = await start({ agentLimit: { limit: 2, ttl_s: 60 } });
      const denied = await gw.call('nope', {}, { requestId: 'req_denied' });
      expect(denied.status).toBe(403);
      const again = await gw.call('nope', {}, { requestId: 'req_denied' });
      expect([again.status, again.headers['idempotent-replayed'], again.body]).toEqual([403, 'true', denied.body]);
      const limited = await gw.call('read_file', { path: 'hello.txt' }, { requestId: 'req_limited' });
      expect(limited.status).toBe(429);
      const retried = await gw.call('read_file', { path: 'hello.txt' }, { requestId: 'req_limited' });
      expect([retried.status, retried.headers['idempotent-replayed']]).toEqual([429, undefined]);
    });

    it('409 request_id_reused for the same request_id with another body', async () => {
      const gw = await start();
      expect((await gw.call('read_file', { path: 'hello.txt' }, { requestId: 'req_reuse' })).status).toBe(200);
      const reused = await gw.call('list_dir', { path: '.' }, { requestId: 'req_reuse' });
      expect([reused.status, reused.body.status, reused.body.reason_code]).toEqual([409, 'conflict', 'request_id_reused']);
    });

    it('409 request_in_progress while the first is still running, then the first answer', async () => {
      const gw = await start({ extraTools: held.tool('slow_call') });
      const first = gw.call('slow_call', {}, { requestId: 'req_slow' }).then((r) => r);
      await sleep(300);
      const during = await gw.call('slow_call', {}, { requestId: 'req_slow' });
      expect([during.status, during.body.status, during.body.reason_code]).toEqual([409, 'conflict', 'request_in_progress']);
      held.release();
      const answered = await first;
      expect([answered.status, answered.body.result.body]).toEqual([200, { released: true }]);
      const after = await gw.call('slow_call', {}, { requestId: 'req_slow' });
      expect([after.status, after.headers['idempotent-replayed'], after.body]).toEqual([200, 'true', answered.body]);
    });

    it('gives an agent that retries a timed-out call (504 tool_timeout) the first answer', async () => {
      const gw = await start({ extraTools: held.tool('slow_call', 300) });
      const timedOut = await gw.call('slow_call', {}, { requestId: 'req_timeout' });
      expect([timedOut.status, timedOut.body.status, timedOut.body.reason_code]).toEqual([504, 'tool_timeout', 'tool_timeout']);
      held.release();
      const retried = await gw.call('slow_call', {}, { requestId: 'req_timeout' });
      expect([retried.status, retried.headers['idempotent-replayed'], retried.body]).toEqual([504, 'true', timedOut.body]);
    });
  });

  if (redisUrl) {
    it('shares limits and replays between two gateway instances on one Redis', async () => {
      const a = await start({ agentLimit: { limit: 3, ttl_s: 60 } });
      const b = await start({ agentLimit: { limit: 3, ttl_s: 60 } });
      writeFileSync(join(a.workspace, 'only-on-a.txt'), 'from a');
      const onA = await a.call('read_file', { path: 'only-on-a.txt' }, { requestId: 'req_shared' });
      expect(onA.status).toBe(200);
      // B has no such file: had it run the call, it would answer 502. It replays A's answer.
      const onB = await b.call('read_file', { path: 'only-on-a.txt' }, { requestId: 'req_shared' });
      expect([onB.status, onB.headers['idempotent-replayed'], onB.body]).toEqual([200, 'true', onA.body]);
      expect((await b.call('read_file', { path: 'hello.txt' })).status).toBe(200); // 3 of 3 (A's call, B's replay, this), counted across A and B
      expect((await a.call('read_file', { path: 'hello.txt' })).status).toBe(429);
      expect((await b.call('read_file', { path: 'hello.txt' })).status).toBe(429);
    });
  }
});

it('fails closed when the Redis store cannot be reached: 503, nothing runs, /readyz 503', async () => {
  const gw = await new TestGateway({ redisUrl: 'redis://127.0.0.1:1/0' }).start();
  try {
    const res = await gw.call('write_now', { path: 'never.txt', content: 'x' });
    expect([res.status, res.body.status]).toEqual([503, 'rate_limit_unavailable']);
    expect(() => readFileSync(join(gw.workspace, 'never.txt'))).toThrow();
    expect((await gw.http().get('/readyz')).status).toBe(503);
  } finally {
    await gw.stop();
  }
});
