import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import Redis from 'ioredis';
import { createTestDatabase, dropTestDatabase, redisReachable, serversFor, TEST_REDIS_URL } from '../../test/support/services';
import { PostgresDatabase } from '../database/postgres-database';
import { IdempotencyStore, keptAnswer, MAX_KEPT_ANSWER_BYTES } from './idempotency.store';
import { PgIdempotencyStore } from './pg-idempotency.store';
import { RedisIdempotencyStore } from './redis-idempotency.store';
import { SqliteIdempotencyStore } from './sqlite-idempotency.store';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'replay-store-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

// Redis DB 8, not the e2e suites' DB 7: they flush theirs between tests.
const REDIS_URL = TEST_REDIS_URL.replace(/\/\d*$/, '/8');
const stores: Array<[string, () => IdempotencyStore]> = [['SQLite store', () => new SqliteIdempotencyStore(join(tempDir(), 'replay.db'))]];
if (redisReachable(REDIS_URL)) stores.push(['Redis store', () => new RedisIdempotencyStore(REDIS_URL)]);
else if (process.env.CI) throw new Error(`CI is set but Redis is not reachable at ${REDIS_URL}`);
else process.stderr.write(`skipping the Redis half of the replay store contract: no Redis at ${REDIS_URL} (set CI to require it)\n`);
// One migrated test database for the PostgreSQL half; keys are unique per run, so it needs no cleaning between tests.
let postgres: PostgresDatabase | undefined;
if (serversFor('the PostgreSQL half of the replay store contract', { postgres: true })) {
  let url: string;
  beforeAll(async () => {
    url = await createTestDatabase();
    postgres = new PostgresDatabase(url);
    await postgres.migrate();
  });
  afterAll(async () => {
    await postgres?.close();
    await dropTestDatabase(url);
  });
  stores.push(['PostgreSQL store', () => new PgIdempotencyStore(postgres!)]);
}

describe.each(stores)('The replay store contract, %s', (_name, open) => {
  let store: IdempotencyStore;
  // Keys unique to this run, so a shared Redis needs no flushing.
  let run = 0;
  const key = (name: string) => `spec_${process.pid}_${run}/${name}`;
  beforeEach(() => {
    store = open();
    run++;
  });
  afterEach(() => (store as unknown as { onApplicationShutdown(): void }).onApplicationShutdown());

  it('claims once, then answers in progress (since when), reused, or the stored response', async () => {
    const before = Date.now();
    await expect(store.claim(key('r1'), 'h1', 1000)).resolves.toEqual({ kind: 'claimed' });
    const inProgress = await store.claim(key('r1'), 'h1', 1000);
    expect(inProgress).toEqual({ kind: 'in_progress', since: expect.any(Number) });
    expect((inProgress as { since: number }).since).toBeGreaterThanOrEqual(before);
    await expect(store.claim(key('r1'), 'h2', 1000)).resolves.toEqual({ kind: 'reused' });
    await store.complete(key('r1'), 'h1', 200, { ok: true }, 1000);
    await expect(store.claim(key('r1'), 'h1', 1000)).resolves.toEqual({ kind: 'replay', status: 200, body: { ok: true } });
    await expect(store.claim(key('r1'), 'h2', 1000)).resolves.toEqual({ kind: 'reused' });
    await expect(store.claim(key('r2'), 'h1', 1000)).resolves.toEqual({ kind: 'claimed' });
  });

  it('forgets a released claim and an expired entry', async () => {
    await store.claim(key('r'), 'h', 1000);
    await store.release(key('r'));
    await expect(store.claim(key('r'), 'h', 20)).resolves.toEqual({ kind: 'claimed' });
    await store.complete(key('r'), 'h', 200, {}, 20);
    await sleep(30);
    await expect(store.claim(key('r'), 'h', 1000)).resolves.toEqual({ kind: 'claimed' });
  });

  it('lets exactly one of many concurrent claims take a key', async () => {
    const claims = await Promise.all(Array.from({ length: 20 }, () => store.claim(key('race'), 'h', 1000)));
    expect(claims.filter((c) => c.kind === 'claimed')).toHaveLength(1);
  });

  it('keeps an answer over the per-answer cap as a stand-in: status and ids, its size and SHA-256', async () => {
    const first = { success: true, status: 'executed', result: { content: 'x'.repeat(MAX_KEPT_ANSWER_BYTES) }, audit_id: 'audit_1', request_id: 'req_1' };
    const firstJson = JSON.stringify(first);
    await store.claim(key('big'), 'h', 1000);
    await store.complete(key('big'), 'h', 200, first, 1000);
    const replay = await store.claim(key('big'), 'h', 1000);
    expect(replay).toEqual({
      kind: 'replay',
      status: 200,
      body: {
        success: true,
        status: 'executed',
        audit_id: 'audit_1',
        request_id: 'req_1',
        result: { replay_not_kept: expect.stringContaining(`${firstJson.length} bytes`), bytes: firstJson.length, sha256: sha256(firstJson) },
      },
    });

    const refusal = {
      success: false,
      status: 'invalid_arguments',
      reason_code: 'invalid_arguments',
      error: 'Arguments do not match',
      details: Array(20000).fill({ path: '/x' }),
    };
    await store.complete(key('big_refusal'), 'h', 400, refusal, 1000);
    const replayed = (await store.claim(key('big_refusal'), 'h', 1000)) as { body: Record<string, unknown> };
    expect(replayed.body).toEqual({
      success: false,
      status: 'invalid_arguments',
      reason_code: 'invalid_arguments',
      error: 'Arguments do not match',
      details: [{ replay_not_kept: expect.any(String), bytes: JSON.stringify(refusal).length, sha256: sha256(JSON.stringify(refusal)) }],
    });
  });
});

describe('keptAnswer', () => {
  it('keeps a stand-in small whatever the first answer holds: long fields are left out', () => {
    const long = 'z'.repeat(300);
    const fields = {
      success: false,
      status: 's'.repeat(256),
      reason_code: 'r'.repeat(256),
      error: 'e'.repeat(256),
      approval_id: 'a'.repeat(256),
      audit_id: 'i'.repeat(256),
      request_id: 'q'.repeat(128),
    };
    const standIn = keptAnswer({ ...fields, details: [long.repeat(300)] });
    expect(standIn.whole).toBe(false);
    expect(standIn.bytes).toBeLessThan(2048);
    expect(JSON.parse(standIn.json)).toEqual({ ...fields, details: [expect.objectContaining({ bytes: expect.any(Number) })] });
    expect(keptAnswer({ ...fields, error: long, details: [long.repeat(300)] }).json).not.toContain(long);
  });
});

describe('The SQLite replay store', () => {
  it('keeps its keys and answers across a kill -9 of the process that wrote them', async () => {
    const file = join(tempDir(), 'replay.db');
    // A real process, killed with SIGKILL right after its calls returned: no shutdown hook ran.
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `const { SqliteIdempotencyStore } = require(${JSON.stringify(join(__dirname, 'sqlite-idempotency.store.ts'))});
         const store = new SqliteIdempotencyStore(${JSON.stringify(file)});
         (async () => {
           await store.claim('a/done', 'h', 60000);
           await store.complete('a/done', 'h', 200, { ran: 'once' }, 60000);
           await store.claim('a/running', 'h', 60000);
           process.kill(process.pid, 'SIGKILL');
         })();`,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect([child.signal, child.stderr]).toEqual(['SIGKILL', '']);

    const store = new SqliteIdempotencyStore(file);
    await expect(store.claim('a/done', 'h', 60000)).resolves.toEqual({ kind: 'replay', status: 200, body: { ran: 'once' } });
    await expect(store.claim('a/running', 'h', 60000)).resolves.toEqual({ kind: 'in_progress', since: expect.any(Number) });
    store.onApplicationShutdown();
  });

  it('deletes expired keys in batches, and only those', async () => {
    const file = join(tempDir(), 'replay.db');
    const store = new SqliteIdempotencyStore(file);
    for (let i = 0; i < 1200; i++) await store.complete(`a/old_${i}`, 'h', 200, { i }, 10);
    await store.complete('a/current', 'h', 200, { kept: true }, 60_000);
    await sleep(20);
    await expect(store.sweepExpired()).resolves.toBe(1200);
    const rows = new Database(file, { readonly: true });
    expect(rows.prepare('SELECT key FROM replay_keys').pluck().all()).toEqual(['a/current']);
    rows.close();
    expect(store.keptBytes).toBe(JSON.stringify({ kept: true }).length);
    store.onApplicationShutdown();
  });

  it('bounds all kept answers: the oldest give way to stand-ins, every key stays until its TTL', async () => {
    const file = join(tempDir(), 'replay.db');
    const limits = { maxAnswerBytes: 4096, maxTotalBytes: 20_000 };
    let store = new SqliteIdempotencyStore(file, limits);
    const answer = (i: number) => ({
      success: true,
      status: 'executed',
      result: { n: i, content: 'y'.repeat(3000) },
      audit_id: `audit_${i}`,
      request_id: `req_${i}`,
    });
    for (let i = 0; i < 20; i++) {
      await store.claim(`a/${i}`, 'h', 60_000);
      await store.complete(`a/${i}`, 'h', 200, answer(i), 60_000);
    }
    expect(store.keptBytes).toBeLessThanOrEqual(limits.maxTotalBytes);

    // Reopened, it counts what is on disk and keeps to the same bound.
    store.onApplicationShutdown();
    store = new SqliteIdempotencyStore(file, limits);
    expect(store.keptBytes).toBeLessThanOrEqual(limits.maxTotalBytes);
    const bodies = [];
    for (let i = 0; i < 20; i++) {
      const claim = (await store.claim(`a/${i}`, 'h', 60_000)) as { kind: string; body: { result: Record<string, unknown>; audit_id: string } };
      expect([claim.kind, claim.body.audit_id]).toEqual(['replay', `audit_${i}`]);
      bodies.push(claim.body.result);
    }
    expect(bodies[0]).toEqual({ replay_not_kept: expect.any(String), bytes: JSON.stringify(answer(0)).length, sha256: sha256(JSON.stringify(answer(0))) });
    expect(bodies[19]).toEqual(answer(19).result);
    store.onApplicationShutdown();
  });
});

afterAll(async () => {
  if (stores.length < 2) return;
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`agw:idem:spec_${process.pid}_*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});
