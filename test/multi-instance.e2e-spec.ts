import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo, connect, createServer as createTcpServer, Server as TcpServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort } from './support/free-port';
import { createTestDatabase, dropTestDatabase, serversFor, TEST_REDIS_URL } from './support/services';
import { ADMIN_TOKEN, AUDIT_KEY, envelope, HMAC_AGENT, HMAC_SECRET, TestGateway, TestGatewayOptions } from './support/test-gateway';

// Its own Redis DB: other suites flush theirs (7, 8) between tests.
const REDIS_URL = TEST_REDIS_URL.replace(/\/\d*$/, '/9');
const servers = serversFor('the multi-instance suite', { postgres: true, redis: true });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A real HTTP upstream on 127.0.0.1 that counts the calls to each path, and can hold them unanswered. */
class CountingUpstream {
  readonly hits = new Map<string, number>();
  hold = false;
  private readonly held: Array<() => void> = [];
  private readonly server: Server = createServer((req, res) => {
    this.hits.set(req.url!, (this.hits.get(req.url!) ?? 0) + 1);
    const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    if (this.hold) this.held.push(answer);
    else answer();
  });

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  /** An http tool that needs approval and calls /hit/{n} here. */
  tool(name: string, timeoutMs = 1000): string {
    const { port } = this.server.address() as AddressInfo;
    return `  ${name}: { kind: http, roles: [deployer], requires_approval: true, timeout_ms: ${timeoutMs}, request: { method: GET, url: "http://127.0.0.1:${port}/hit/{n}" }, allowed_hosts: [127.0.0.1], input_schema: { type: object, required: [n], properties: { n: { type: string } } } }`;
  }

  total(): number {
    return [...this.hits.values()].reduce((sum, n) => sum + n, 0);
  }

  async stop(): Promise<void> {
    this.held.splice(0).forEach((answer) => answer());
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A TCP relay to a store, which a test cuts (the store goes away mid-traffic) and restores on the same port. */
class StoreProxy {
  private server?: TcpServer;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: number) {}

  async start(): Promise<this> {
    this.server = createTcpServer((client) => {
      const upstream = connect(this.target, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async cut(): Promise<void> {
    const closed = new Promise((resolve) => this.server!.close(resolve));
    this.sockets.forEach((socket) => socket.destroy());
    await closed;
  }

  async restore(): Promise<void> {
    await this.start();
  }
}

(servers ? describe : describe.skip)('Several gateway instances sharing PostgreSQL and Redis', () => {
  jest.setTimeout(60_000);
  let databaseUrl: string;
  let workspace: string;
  let upstream: CountingUpstream;
  const gateways: TestGateway[] = [];

  beforeEach(async () => {
    databaseUrl = await createTestDatabase();
    workspace = mkdtempSync(join(tmpdir(), 'agw-shared-workspace-'));
    upstream = await new CountingUpstream().start();
    const redis = new Redis(REDIS_URL);
    await redis.flushdb();
    redis.disconnect();
  });

  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gw) => gw.stop()));
    await upstream.stop();
    await dropTestDatabase(databaseUrl);
    rmSync(workspace, { recursive: true, force: true });
  });

  /** A gateway on the shared database, Redis and workspace (its own data dir, so its own instance id). */
  async function instance(options: TestGatewayOptions = {}): Promise<TestGateway> {
    const gw = new TestGateway({ databaseUrl, redisUrl: REDIS_URL, workspace, extraTools: upstream.tool('notify'), ...options });
    gateways.push(gw);
    return gw.start();
  }

  /** Two instances started at once: both migrate the same fresh database. */
  const pair = (options: TestGatewayOptions = {}) =>
    Promise.all([instance({ instanceId: 'instance-a', ...options }), instance({ instanceId: 'instance-b', ...options })]);

  it('lists, previews and approves on B what was asked on A; of 10 approvals raced on both, each executes exactly once', async () => {
    const [a, b] = await pair();
    const asked = await a.call('notify', { n: '0' });
    expect(asked.status).toBe(202);
    const id = asked.body.approval_id;
    const listed = await b.asApprover().get('/api/approvals?status=pending');
    expect(listed.body.approvals.map((x: { approval_id: string }) => x.approval_id)).toEqual([id]);
    const preview = await b.asApprover().get(`/api/approvals/${id}/preview`);
    expect([preview.status, preview.body.kind, preview.body.url]).toEqual([200, 'http', expect.stringMatching(/\/hit\/0$/)]);

    const ids = [id];
    for (let n = 1; n < 10; n++) ids.push((await (n % 2 ? b : a).call('notify', { n: String(n) })).body.approval_id);
    const answers = await Promise.all(ids.flatMap((approvalId) => [a.asApprover().decide(approvalId, true), b.asApprover().decide(approvalId, true)]));
    const statuses = answers.map((res) => res.status).sort();
    expect(statuses).toEqual([...Array(10).fill(200), ...Array(10).fill(409)]);
    expect(answers.filter((res) => res.status === 409).every((res) => res.body.reason_code === 'already_decided')).toBe(true);
    expect(Object.fromEntries(upstream.hits)).toEqual(Object.fromEntries(ids.map((_, n) => [`/hit/${n}`, 1])));
    const executed = await a.asApprover().get('/api/approvals?status=executed&limit=20');
    expect(executed.body.approvals).toHaveLength(10);
    // The agent collects the outcome from either instance.
    expect((await b.get(`/api/approvals/${id}`)).body).toMatchObject({ status: 'executed', result: { status: 200 } });
  });

  it('holds the pending cap across both instances when one agent floods them at once', async () => {
    const [a, b] = await pair({ maxPending: 3 });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, n) => (n % 2 ? a : b).call('notify', { n: String(n) })));
    expect(answers.filter((res) => res.status === 202)).toHaveLength(3);
    const refused = answers.filter((res) => res.status === 429);
    expect(refused.map((res) => res.body.reason_code)).toEqual(Array(7).fill('too_many_pending'));
    const metrics = await b.http().get('/metrics');
    expect(metrics.text).toMatch(/^gateway_pending_approvals 3$/m);
  });

  it("spends an agent's rate limit on both instances, and replays A's answer on B without running the call again", async () => {
    const [a, b] = await pair({ agentLimit: { limit: 4, ttl_s: 60 } });
    const first = await a.call('write_now', { path: 'once.txt', content: 'first' }, { requestId: 'req_shared' });
    expect(first.status).toBe(200);
    unlinkSync(join(workspace, 'once.txt'));
    const replayed = await b.call('write_now', { path: 'once.txt', content: 'first' }, { requestId: 'req_shared' });
    expect([replayed.status, replayed.headers['idempotent-replayed'], replayed.body]).toEqual([200, 'true', first.body]);
    expect(existsSync(join(workspace, 'once.txt'))).toBe(false);
    expect((await b.call('list_dir', { path: '.' })).status).toBe(200);
    expect((await a.call('list_dir', { path: '.' })).status).toBe(200); // 4 of 4, counted across A and B (the replay spent one)
    const overA = await a.call('list_dir', { path: '.' });
    const overB = await b.call('list_dir', { path: '.' });
    expect([overA.status, overB.status, overB.body.status]).toEqual([429, 429, 'rate_limited']);
  });

  it('counts failed authentications from one address on both instances', async () => {
    const [a, b] = await pair({ ipLimit: { limit: 2, ttl_s: 60 } });
    const forged = (gw: TestGateway) =>
      gw.post('/api/tools/call', envelope(HMAC_AGENT, 'list_dir', { path: '.' }), HMAC_AGENT, { 'X-Agent-Signature': 'AAAA' });
    expect((await forged(a)).status).toBe(401);
    expect((await forged(b)).status).toBe(401);
    const third = await forged(a);
    expect([third.status, third.body.status]).toEqual([429, 'rate_limited']);
    expect((await forged(b)).status).toBe(429);
  });

  it('refuses with 503 while PostgreSQL is away, runs nothing, says so on /readyz, and recovers by itself', async () => {
    const proxy = await new StoreProxy(Number(new URL(databaseUrl).port || 5432)).start();
    const viaProxy = new URL(databaseUrl);
    viaProxy.port = String(proxy.port);
    const gw = await instance({ databaseUrl: viaProxy.toString() });
    const waiting = (await gw.call('notify', { n: 'before' })).body.approval_id;

    await proxy.cut();
    const asked = await gw.call('notify', { n: 'during' });
    expect(asked.status).toBe(503);
    const approved = await gw.asApprover().decide(waiting, true);
    expect([approved.status, approved.body.reason_code]).toEqual([503, expect.stringMatching(/^(database|audit)_unavailable$/)]);
    const ready = await gw.http().get('/readyz');
    expect([ready.status, ready.body.reason_code]).toEqual([503, 'postgres_unavailable']);
    expect(upstream.total()).toBe(0);
    // Metrics stay per instance and keep answering; the shared count is unknown meanwhile.
    const metrics = await gw.http().get('/metrics');
    expect([metrics.status, metrics.text]).toEqual([200, expect.stringMatching(/^gateway_pending_approvals nan$/im)]);

    await proxy.restore();
    await until(async () => (await gw.http().get('/readyz')).status === 200);
    const again = await gw.asApprover().decide(waiting, true);
    expect([again.status, again.body.status]).toEqual([200, 'executed']);
    expect(Object.fromEntries(upstream.hits)).toEqual({ '/hit/before': 1 });
    await proxy.cut();
  });

  it('refuses with 503 while Redis is away, runs nothing, says so on /readyz, and recovers by itself', async () => {
    const redisUrl = new URL(REDIS_URL);
    const proxy = await new StoreProxy(Number(redisUrl.port || 6379)).start();
    redisUrl.port = String(proxy.port);
    // With a rate limit, so that the call needs Redis (the replay keys are in PostgreSQL).
    const gw = await instance({ redisUrl: redisUrl.toString(), agentLimit: { limit: 100, ttl_s: 60 } });
    expect((await gw.call('write_now', { path: 'before.txt', content: 'x' })).status).toBe(200);

    await proxy.cut();
    const refused = await gw.call('write_now', { path: 'during.txt', content: 'x' });
    expect([refused.status, refused.body.reason_code]).toEqual([503, 'rate_limit_store_unavailable']);
    expect(existsSync(join(workspace, 'during.txt'))).toBe(false);
    const ready = await gw.http().get('/readyz');
    expect([ready.status, ready.body.reason_code]).toEqual([503, 'redis_unavailable']);

    await proxy.restore();
    await until(async () => (await gw.http().get('/readyz')).status === 200);
    expect((await gw.call('write_now', { path: 'after.txt', content: 'x' })).status).toBe(200);
    await proxy.cut();
  });

  it('will not start on a PostgreSQL it cannot reach, and says which', async () => {
    const closedPort = await freePort();
    const gw = new TestGateway({ databaseUrl: `postgres://postgres:not-shown@127.0.0.1:${closedPort}/agw`, workspace });
    gateways.push(gw);
    await expect(gw.start()).rejects.toThrow(
      new RegExp(`^PostgreSQL \\(GATEWAY_DATABASE_URL\\) cannot be reached or migrated: connect ECONNREFUSED 127.0.0.1:${closedPort}$`),
    );
  });

  describe('with an instance that is killed (kill -9) while it runs an approved call', () => {
    let build: string;
    beforeAll(() => {
      // The gateway as shipped, built from this checkout beside dist/ (node_modules must resolve).
      build = join(process.cwd(), `.build-multi-instance-${process.pid}`);
      const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', build], { encoding: 'utf8' });
      if (!existsSync(join(build, 'main.js'))) throw new Error(`could not build the gateway: ${tsc.stdout}${tsc.stderr}`);
    }, 120_000);
    afterAll(() => rmSync(build, { recursive: true, force: true }));

    it('leaves the other instance serving, fails the call only after its lease, and never runs it twice', async () => {
      const b = await instance({ instanceId: 'instance-b' });
      writeFileSync(join(workspace, 'hello.txt'), 'hi');
      const killed = await startChild(build, b, 'instance-killed');
      try {
        const id = (await b.call('notify', { n: 'held' })).body.approval_id;
        upstream.hold = true;
        const approving = approveOn(killed.port, id).catch(() => undefined);
        await until(async () => upstream.hits.get('/hit/held') === 1);
        killed.child.kill('SIGKILL');
        await approving;

        expect((await b.call('read_file', { path: 'hello.txt' })).status).toBe(200);
        expect((await b.http().get('/readyz')).status).toBe(200);
        // Another instance starting now fails only its own interrupted calls: this one may still be running.
        await instance({ instanceId: 'instance-c' });
        expect((await b.asApprover().get(`/api/approvals/${id}`)).body.status).toBe('approved');

        // The killed instance never comes back: past timeout_ms + 15 s, B marks the call failed.
        await until(async () => (await b.asApprover().get(`/api/approvals/${id}`)).body.status === 'failed', 30_000);
        expect((await b.get(`/api/approvals/${id}`)).body).toMatchObject({ status: 'failed', error: { reason_code: 'interrupted' } });
        expect((await b.asApprover().decide(id, true)).status).toBe(409);
        expect(upstream.hits.get('/hit/held')).toBe(1);
      } finally {
        killed.child.kill('SIGKILL');
      }
    });
  });

  /** `node <build>/main.js` as a second instance on the same config, stores and workspace as `like`. */
  async function startChild(build: string, like: TestGateway, instanceId: string): Promise<{ child: ChildProcess; port: number }> {
    const port = await freePort();
    const dataDir = join(like.root, `data-${instanceId}`);
    const child = spawn(process.execPath, [join(build, 'main.js')], {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        GATEWAY_CONFIG: like.configFile,
        GATEWAY_DATA_DIR: dataDir,
        GATEWAY_WORKSPACE: workspace,
        GATEWAY_DATABASE_URL: databaseUrl,
        GATEWAY_REDIS_URL: REDIS_URL,
        GATEWAY_INSTANCE_ID: instanceId,
        GATEWAY_AUDIT_KEY: AUDIT_KEY,
        TEST_DEPLOY_KEY: HMAC_SECRET,
        LOG_LEVEL: 'error',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await until(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 20_000);
    return { child, port };
  }
});

async function approveOn(port: number, approvalId: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/approve`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ approval_id: approvalId, approved: true }),
  });
}

async function until(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(100);
  }
}
