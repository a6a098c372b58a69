import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { signRequestHeaders } from '../src/auth/signature';
import { eventually } from './support/eventually';
import { freePort } from './support/free-port';
import { createTestDatabase, dropTestDatabase, serversFor, TEST_REDIS_URL } from './support/services';
import { envelope, HMAC_AGENT, TestGateway, TestGatewayOptions } from './support/test-gateway';

const servers = serversFor('the Redis-loss suite', { postgres: true, redis: true });
const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

/**
 * A Redis that loses everything in the middle of a test. With the redis-server binary: a private
 * server without persistence, really restarted (it comes back empty). Without it: a db index of the
 * shared test Redis that no other suite uses, flushed (FLUSHDB stands in for the restart).
 */
class ForgetfulRedis {
  readonly how = hasRedisServer ? 'a real restart of a Redis without persistence' : 'FLUSHDB of its own db index standing in for a restart';
  url = TEST_REDIS_URL.replace(/\/\d*$/, '/12');
  private server?: ChildProcess;
  private port = 0;

  async start(): Promise<this> {
    if (!hasRedisServer) {
      await this.flush();
      return this;
    }
    this.port = await freePort();
    this.url = `redis://127.0.0.1:${this.port}/0`;
    await this.spawn();
    return this;
  }

  async loseEverything(): Promise<void> {
    if (!hasRedisServer) return this.flush();
    await this.kill();
    await this.spawn();
  }

  async stop(): Promise<void> {
    if (hasRedisServer) await this.kill();
  }

  private async spawn(): Promise<void> {
    this.server = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const up = await eventually(async () => {
      const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      try {
        await probe.connect();
        return (await probe.dbsize()) === 0;
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    }, Boolean);
    if (!up) throw new Error(`redis-server did not start on port ${this.port}`);
  }

  private async kill(): Promise<void> {
    const server = this.server;
    if (!server || server.exitCode !== null) return;
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGKILL');
    await exited;
  }

  private async flush(): Promise<void> {
    const redis = new Redis(this.url);
    await redis.flushdb();
    redis.disconnect();
  }
}

/** One signed request as an eavesdropper would capture it; `to` sends it again, byte for byte, to any instance. */
function captured(gw: TestGateway, tool: string, args: unknown, requestId: string) {
  const body = JSON.stringify(envelope(HMAC_AGENT, tool, args, { requestId }));
  const headers = { 'Content-Type': 'application/json', ...signRequestHeaders(HMAC_AGENT, gw.keyOf(HMAC_AGENT), 'POST', '/api/tools/call', body) };
  return (to: TestGateway) => to.http().post('/api/tools/call').set(headers).send(body);
}

const ready = async (gw: TestGateway) =>
  expect(
    await eventually(
      async () => (await gw.http().get('/readyz')).status,
      (status) => status === 200,
    ),
  ).toBe(200);

(servers ? describe : describe.skip)(`Losing Redis (${new ForgetfulRedis().how}) within the signature window`, () => {
  jest.setTimeout(60_000);
  const gateways: TestGateway[] = [];
  let redis: ForgetfulRedis;
  let workspace: string;
  let databaseUrl: string | undefined;

  beforeEach(async () => {
    redis = await new ForgetfulRedis().start();
    workspace = mkdtempSync(join(tmpdir(), 'agw-redis-loss-'));
  });
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gw) => gw.stop()));
    await redis.stop();
    if (databaseUrl) await dropTestDatabase(databaseUrl);
    databaseUrl = undefined;
    rmSync(workspace, { recursive: true, force: true });
  });

  async function instance(options: TestGatewayOptions): Promise<TestGateway> {
    const gw = new TestGateway({ redisUrl: redis.url, workspace, ...options });
    gateways.push(gw);
    return gw.start();
  }

  /** Two instances on one PostgreSQL database and one Redis, as in production. */
  async function pair(): Promise<[TestGateway, TestGateway]> {
    databaseUrl = await createTestDatabase();
    return Promise.all([instance({ databaseUrl, instanceId: 'instance-a' }), instance({ databaseUrl, instanceId: 'instance-b' })]);
  }

  describe('with PostgreSQL: replay keys live there and survive', () => {
    it('answers a request for approval sent again after Redis lost everything with the first answer, and files no second approval', async () => {
      const [a, b] = await pair();
      const send = captured(a, 'write_file', { path: 'approved-once.txt', content: 'x' }, 'req_across_redis_loss');
      const first = await send(a);
      expect([first.status, first.body.status]).toEqual([202, 'pending_approval']);

      await redis.loseEverything();
      await ready(b);
      const again = await send(b);
      expect([again.status, again.headers['idempotent-replayed'], again.body]).toEqual([202, 'true', first.body]);
      const listed = (await a.asApprover().get('/api/approvals')).body.approvals as Array<{ request_id: string }>;
      expect(listed.filter((x) => x.request_id === 'req_across_redis_loss')).toHaveLength(1);
    });

    it('does not run a call without approval a second time after Redis lost everything', async () => {
      const [a, b] = await pair();
      const send = captured(a, 'write_now', { path: 'ran-once.txt', content: 'first' }, 'req_run_across_redis_loss');
      const first = await send(a);
      expect(first.status).toBe(200);
      writeFileSync(join(workspace, 'ran-once.txt'), 'changed since');

      await redis.loseEverything();
      await ready(b);
      const again = await send(b);
      expect([again.status, again.headers['idempotent-replayed'], again.body]).toEqual([200, 'true', first.body]);
      expect(readFileSync(join(workspace, 'ran-once.txt'), 'utf8')).toBe('changed since');
      // The shared audit log (PostgreSQL): one run, then a replay on B.
      const records = (await a.asApprover().get('/api/audit?request_id=req_run_across_redis_loss')).body.records as Array<{
        event: string;
        instance_id: string;
      }>;
      expect(records.filter((r) => r.event === 'outcome').map((r) => r.instance_id)).toEqual(['instance-a']);
      expect(records.filter((r) => r.event === 'replay').map((r) => r.instance_id)).toEqual(['instance-b']);
    });
  });

  describe('with Redis only (approvals in SQLite): the replay keys are lost with Redis, the approval is not', () => {
    it('refuses the request sent again with 409 approval_already_filed, naming the first approval, and files no second one', async () => {
      const gw = await instance({});
      const send = captured(gw, 'write_file', { path: 'filed-once.txt', content: 'x' }, 'req_filed_once');
      const first = await send(gw);
      expect(first.status).toBe(202);

      await redis.loseEverything();
      await ready(gw);
      const again = await send(gw);
      expect([again.status, again.body.status, again.body.reason_code]).toEqual([409, 'conflict', 'approval_already_filed']);
      expect(again.body.error).toContain(first.body.approval_id);
      const listed = (await gw.asApprover().get('/api/approvals')).body.approvals as Array<{ approval_id: string; request_id: string }>;
      expect(listed.filter((x) => x.request_id === 'req_filed_once').map((x) => x.approval_id)).toEqual([first.body.approval_id]);
    });
  });
});
