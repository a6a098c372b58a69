import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { AddressInfo, connect, createServer, Server, Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Pool } from 'pg';
import { verifyAuditDatabase } from '../src/audit/audit-verify';
import { createTestDatabase, dropTestDatabase, serversFor } from './support/services';
import { AUDIT_KEY, ED_AGENT, TestGateway } from './support/test-gateway';

const run = promisify(execFile);
const key = Buffer.from(AUDIT_KEY);

/**
 * A TCP hop between one gateway and PostgreSQL that the test can cut: `stop()` makes the server
 * unreachable (every connection dropped, the port refused), `start()` brings it back on the same
 * port. With `loseNextCommitAnswer`, the next COMMIT reaches the server, but the connection is cut
 * before its answer comes back: committed, without the gateway knowing.
 */
class PostgresHop {
  port = 0;
  loseNextCommitAnswer = false;
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly target: URL) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(Number(this.target.port) || 5432, this.target.hostname);
      let detached = false;
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.on('data', (chunk) => {
        if (this.loseNextCommitAnswer && chunk.includes('COMMIT')) {
          this.loseNextCommitAnswer = false;
          detached = true;
          upstream.end(chunk);
          client.destroy();
          return;
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => !client.destroyed && client.write(chunk));
      client.on('close', () => !detached && upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const closed = new Promise((resolve) => this.server?.close(resolve));
    this.sockets.forEach((s) => s.destroy());
    await closed;
  }

  url(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    url.host = `127.0.0.1:${this.port}`;
    return url.toString();
  }
}

const runs = serversFor('the audit-in-PostgreSQL suite', { postgres: true });

(runs ? describe : describe.skip)('Audit across instances (PostgreSQL)', () => {
  let databaseUrl: string;
  let db: Pool;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    db = new Pool({ connectionString: databaseUrl, max: 2 });
    db.on('error', () => undefined); // an idle connection terminated by the reconnect test
    a = await new TestGateway({ databaseUrl, instanceId: 'gw-a' }).start();
    b = await new TestGateway({ databaseUrl, instanceId: 'gw-b' }).start();
    for (const gw of [a, b]) writeFileSync(join(gw.workspace, 'hello.txt'), 'hi');
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await db?.end();
    if (databaseUrl) await dropTestDatabase(databaseUrl);
  });

  const chainOf = async (instanceId: string) =>
    (await db.query<{ line: string }>('SELECT line FROM audit_records WHERE instance_id = $1 ORDER BY seq', [instanceId])).rows.map((r) => JSON.parse(r.line));
  const cli = (env: Record<string, string> = {}) =>
    run('npx', ['tsx', 'src/cli/audit-verify.ts', '--database'], {
      env: { ...process.env, GATEWAY_DATABASE_URL: databaseUrl, GATEWAY_AUDIT_KEY: AUDIT_KEY, ...env },
    });

  it('keeps one chain per instance in the database, each verifying from there (function and CLI), none on local disk', async () => {
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).call('read_file', { path: 'hello.txt' }, { agent: i % 4 < 2 ? undefined : ED_AGENT })),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(40).fill(200));

    for (const [gw, id] of [
      [a, 'gw-a'],
      [b, 'gw-b'],
    ] as const) {
      const chain = await chainOf(id);
      expect(chain.map((r) => r.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(chain.every((r) => r.instance_id === id)).toBe(true);
      for (const file of ['audit.jsonl', 'audit-index.db']) expect(existsSync(join(gw.dataDir, file))).toBe(false);
    }
    const verdict = await verifyAuditDatabase(db, { key });
    expect(verdict).toEqual({
      seal: 'hmac-sha256',
      chains: [
        { instance_id: 'gw-a', ok: true, count: 40, head: { seq: 40, hash: expect.stringMatching(/^[0-9a-f]{64}$/) } },
        { instance_id: 'gw-b', ok: true, count: 40, head: { seq: 40, hash: expect.stringMatching(/^[0-9a-f]{64}$/) } },
      ],
    });
    const { stdout } = await cli();
    expect(stdout).toBe(
      'OK instance gw-a: 40 records, hash chain intact; matches its head (seq 40)\n' +
        'OK instance gw-b: 40 records, hash chain intact; matches its head (seq 40)\n' +
        'OK: 2 chain(s) in the database, 0 broken; sealed with GATEWAY_AUDIT_KEY (HMAC-SHA256)\n',
    );
    // Under another key every record's HMAC is wrong: the first record of each chain is named.
    await expect(cli({ GATEWAY_AUDIT_KEY: 'another-audit-key-0123456789abcdef0123' })).rejects.toMatchObject({
      code: 1,
      stdout: expect.stringContaining('BROKEN instance gw-a: seq 1: content does not match its HMAC'),
    });
  }, 60_000);

  it('answers GET /api/audit across instances, from either of them', async () => {
    const onB = await b.call('read_file', { path: 'hello.txt' }, { requestId: 'req_asked_on_b' });
    const fromA = await a.asApprover().get('/api/audit?request_id=req_asked_on_b');
    expect(fromA.status).toBe(200);
    expect(fromA.body.records).toEqual([
      expect.objectContaining({ event: 'decision', instance_id: 'gw-b', audit_id: onB.body.audit_id }),
      expect.objectContaining({ event: 'outcome', instance_id: 'gw-b', audit_id: onB.body.audit_id, status: 'executed' }),
    ]);
    const all = await b.asApprover().get('/api/audit?agent_id=agent_deploy_test&limit=1000');
    expect(new Set(all.body.records.map((r: { instance_id: string }) => r.instance_id))).toEqual(new Set(['gw-a', 'gw-b']));
    const times = all.body.records.map((r: { ts: string }) => r.ts);
    expect(times).toEqual([...times].sort());
    const newest = await a.asApprover().get('/api/audit?limit=1');
    expect(newest.body.records).toHaveLength(1);
  });

  it('redacts a value with the same marker on every instance (one marker key, in the database)', async () => {
    const onA = await a.call('read_file', { path: 'x', note: 'ops-lead@example.com' }, { requestId: 'req_marker_a' });
    const onB = await b.call('read_file', { path: 'x', note: 'ops-lead@example.com' }, { requestId: 'req_marker_b' });
    const marker = async (auditId: string) => {
      const records = (await a.asApprover().get(`/api/audit?audit_id=${auditId}`)).body.records as Array<{ arguments?: { note?: string } }>;
      return records.find((r) => r.arguments)!.arguments!.note;
    };
    const fromA = await marker(onA.body.audit_id);
    expect(fromA).toMatch(/^\[REDACTED:email:[0-9a-f]{8}\]$/);
    expect(await marker(onB.body.audit_id)).toBe(fromA);
  });

  it('continues its own chain from the database after a restart', async () => {
    const before = (await chainOf('gw-a')).length;
    await a.restart();
    expect((await a.call('list_dir', { path: '.' })).status).toBe(200);
    expect((await chainOf('gw-a')).map((r) => r.seq).slice(before)).toEqual([before + 1, before + 2]);
    await expect(verifyAuditDatabase(db, { key })).resolves.toMatchObject({ chains: [{ ok: true }, { ok: true }] });
  });

  describe('catches tampering in the database, per chain, naming the instance and the seq', () => {
    beforeAll(() => db.query('CREATE TABLE audit_records_saved AS SELECT * FROM audit_records'));
    afterEach(() => db.query('BEGIN; DELETE FROM audit_records; INSERT INTO audit_records SELECT * FROM audit_records_saved; COMMIT'));

    const brokenOnly = async (instanceId: string, seq: number, problem: RegExp) => {
      const { chains } = await verifyAuditDatabase(db, { key });
      expect(chains).toEqual([
        ...(instanceId === 'gw-a' ? [] : [expect.objectContaining({ instance_id: 'gw-a', ok: true })]),
        { instance_id: instanceId, ok: false, seq, problem: expect.stringMatching(problem) },
        ...(instanceId === 'gw-b' ? [] : [expect.objectContaining({ instance_id: 'gw-b', ok: true })]),
      ]);
      const failed = cli();
      await expect(failed).rejects.toMatchObject({ code: 1, stdout: expect.stringContaining(`BROKEN instance ${instanceId}: seq ${seq}: `) });
      const { stdout } = await failed.catch((err: { stdout: string }) => err);
      expect(stdout).toMatch(new RegExp(`^BROKEN instance ${instanceId}: seq ${seq}: ${problem.source}`, 'm'));
      expect(stdout).toMatch(/^BROKEN: 2 chain\(s\) in the database, 1 broken/m);
    };

    it('an edited record', async () => {
      await db.query(`UPDATE audit_records SET line = replace(line, '"tool":"read_file"', '"tool":"list_dir"') WHERE instance_id = 'gw-b' AND seq = 5`);
      await brokenOnly('gw-b', 5, /content does not match its HMAC/);
    });

    it('a removed record', async () => {
      await db.query(`DELETE FROM audit_records WHERE instance_id = 'gw-a' AND seq = 7`);
      await brokenOnly('gw-a', 7, /seq 8 where 7 was expected/);
    });

    it('reordered records', async () => {
      await db.query(`UPDATE audit_records r SET line = o.line FROM audit_records_saved o
                      WHERE r.instance_id = 'gw-a' AND o.instance_id = 'gw-a' AND ((r.seq = 3 AND o.seq = 4) OR (r.seq = 4 AND o.seq = 3))`);
      await brokenOnly('gw-a', 3, /seq 4 where 3 was expected/);
    });

    it('a truncated chain (its head says more)', async () => {
      await db.query(`DELETE FROM audit_records WHERE instance_id = 'gw-b' AND seq > 36`);
      await brokenOnly('gw-b', 37, /the chain ends at seq 36, but its head says seq \d+: records were removed from the end/);
    });

    it('an instance whose last record was edited does not start', async () => {
      const { rows } = await db.query<{ seq: string }>(`SELECT seq FROM audit_heads WHERE instance_id = 'gw-b'`);
      await db.query(`UPDATE audit_records SET line = replace(line, '"ts":"', '"ts":"1') WHERE instance_id = 'gw-b' AND seq = $1`, [rows[0].seq]);
      await expect(b.restart()).rejects.toThrow(`audit chain of instance "gw-b" in PostgreSQL: record seq ${rows[0].seq}: content does not match its HMAC`);
      await db.query('BEGIN; DELETE FROM audit_records; INSERT INTO audit_records SELECT * FROM audit_records_saved; COMMIT');
      await b.restart();
    });
  });

  describe('when PostgreSQL goes away', () => {
    let hop: PostgresHop;
    let c: TestGateway;

    beforeAll(async () => {
      hop = new PostgresHop(new URL(databaseUrl));
      await hop.start();
      c = await new TestGateway({ databaseUrl: hop.url(databaseUrl), instanceId: 'gw-c' }).start();
      writeFileSync(join(c.workspace, 'hello.txt'), 'hi');
    });
    afterAll(async () => {
      await c?.stop();
      await hop?.stop();
    });

    it('refuses with 503 audit_unavailable and runs nothing; once it is back the instance serves again by itself', async () => {
      expect((await c.call('read_file', { path: 'hello.txt' })).status).toBe(200);
      await hop.stop();
      const refused = await c.call('write_now', { path: 'must-not-exist.txt', content: 'x' });
      expect([refused.status, refused.body.status, refused.body.reason_code]).toEqual([503, 'audit_unavailable', 'audit_unavailable']);
      expect(existsSync(join(c.workspace, 'must-not-exist.txt'))).toBe(false);
      expect((await c.http().get('/readyz')).status).toBe(503);

      await hop.start();
      // An idle instance comes back too: readiness itself finds the chain's head again.
      expect((await c.http().get('/readyz')).status).toBe(200);
      const served = await c.call('write_now', { path: 'written.txt', content: 'x' });
      expect(served.status).toBe(200);
      expect(existsSync(join(c.workspace, 'written.txt'))).toBe(true);
      expect((await chainOf('gw-c')).map((r) => [r.seq, r.event, r.status ?? r.decision])).toEqual([
        [1, 'decision', 'allow'],
        [2, 'outcome', 'executed'],
        [3, 'decision', 'allow'],
        [4, 'outcome', 'executed'],
      ]);
      await expect(verifyAuditDatabase(db, { key })).resolves.toMatchObject({
        chains: [{ ok: true }, { ok: true }, { instance_id: 'gw-c', ok: true, count: 4 }],
      });
    });

    it('continues after a commit whose answer was lost (the records are in the chain, the call got 503)', async () => {
      const before = (await chainOf('gw-c')).length;
      hop.loseNextCommitAnswer = true;
      const lost = await c.call('write_now', { path: 'lost-answer.txt', content: 'x' });
      expect([lost.status, lost.body.reason_code]).toEqual([503, 'audit_unavailable']);
      expect(existsSync(join(c.workspace, 'lost-answer.txt'))).toBe(false);
      expect((await c.call('read_file', { path: 'hello.txt' })).status).toBe(200);
      // The committed decision, then the refusal recorded once the writer found its head, then the next call.
      expect((await chainOf('gw-c')).slice(before).map((r) => [r.event, r.status ?? r.decision, r.audit_id === lost.body.audit_id])).toEqual([
        ['decision', 'allow', true],
        ['request', 'audit_unavailable', true],
        ['decision', 'allow', false],
        ['outcome', 'executed', false],
      ]);
      await expect(verifyAuditDatabase(db, { key })).resolves.toMatchObject({ chains: [{ ok: true }, { ok: true }, { ok: true }] });
    });

    it('reconnects by itself after its connections are terminated by the server', async () => {
      await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`);
      for (const gw of [a, b, c]) {
        // A call may meet a connection the pool has not yet seen die (503); the next one is served.
        const first = await gw.call('read_file', { path: 'hello.txt' });
        expect([200, 503]).toContain(first.status);
        expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200);
      }
      await expect(verifyAuditDatabase(db, { key })).resolves.toMatchObject({ chains: [{ ok: true }, { ok: true }, { ok: true }] });
    });
  });
});
