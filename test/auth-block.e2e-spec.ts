import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { storesUnderTest } from './support/services';
import { MCP_DEPLOY_TOKEN, TestGateway } from './support/test-gateway';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(storesUnderTest())(
  'An address that spent its failed-authentication budget, with the %s (the address limit before the signature)',
  (_name, redisUrl) => {
    let gw: TestGateway;
    beforeEach(async () => {
      if (redisUrl) {
        const redis = new Redis(redisUrl);
        await redis.flushdb();
        redis.disconnect();
      }
      gw = await new TestGateway({ ipLimit: { limit: 3, ttl_s: 2 }, redisUrl }).start();
      writeFileSync(join(gw.workspace, 'hello.txt'), 'hi');
    });
    afterEach(() => gw.stop());

    const unsigned = () => gw.http().post('/api/tools/call').set('Content-Type', 'application/json').send('{}');
    const mcpListing = () =>
      gw
        .http()
        .post('/mcp')
        .set({ Authorization: `Bearer ${MCP_DEPLOY_TOKEN}`, Accept: 'application/json, text/event-stream', 'Content-Type': 'application/json' })
        .send({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });

    it('is refused with 429 even with valid credentials, at every door, until the block ends', async () => {
      for (let i = 0; i < 3; i++) expect((await unsigned()).status).toBe(401);
      const blocked = await unsigned();
      expect([blocked.status, blocked.body.reason_code]).toEqual([429, 'rate_limited']);

      const signed = await gw.call('write_now', { path: 'guessed.txt', content: 'x' });
      expect([signed.status, signed.body.status, signed.body.reason_code]).toEqual([429, 'rate_limited', 'rate_limited']);
      expect(Number(signed.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(existsSync(join(gw.workspace, 'guessed.txt'))).toBe(false);
      expect((await gw.asApprover().get('/api/approvals')).status).toBe(429);
      const mcp = await mcpListing();
      expect([mcp.status, mcp.body.reason_code]).toEqual([429, 'rate_limited']);

      await sleep(Number(signed.headers['retry-after']) * 1000 + 100);
      expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200);
      expect((await gw.asApprover().get('/api/approvals')).status).toBe(200);
      expect((await mcpListing()).status).toBe(200);
    });

    it('lets valid credentials through while the budget is not spent', async () => {
      for (let i = 0; i < 3; i++) expect((await unsigned()).status).toBe(401);
      expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200);
    });
  },
);
