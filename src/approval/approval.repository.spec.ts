import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, dropTestDatabase, serversFor } from '../../test/support/services';
import { InvalidRequest } from '../core/errors';
import { GatewayConfig } from '../config/gateway-config';
import { PostgresDatabase } from '../database/postgres-database';
import { SQLITE_MIGRATIONS } from '../database/migrations';
import { openSqlite, SqliteDatabase } from '../database/sqlite-database';
import { ApprovalAlreadyFiled, ApprovalRepository, INTERRUPTED, NewApproval } from './approval.repository';
import { PgApprovalRepository } from './pg-approval.repository';
import { SqliteApprovalRepository } from './sqlite-approval.repository';

/** One database, and a repository on it per instance, each with its own connection (pool). */
interface Backend {
  repository(instanceId: string): ApprovalRepository;
  close(): Promise<void>;
}

function sqliteBackend(): Backend {
  const dataDir = mkdtempSync(join(tmpdir(), 'approvals-'));
  const databases: SqliteDatabase[] = [];
  return {
    repository(instanceId) {
      const database = new SqliteDatabase({ paths: { dataDir } } as GatewayConfig);
      databases.push(database);
      return new SqliteApprovalRepository(database, instanceId);
    },
    async close() {
      databases.forEach((d) => d.onApplicationShutdown());
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function postgresBackend(): Promise<Backend> {
  const url = await createTestDatabase();
  const pools: PostgresDatabase[] = [];
  const migrator = new PostgresDatabase(url);
  await migrator.migrate();
  await migrator.close();
  return {
    repository(instanceId) {
      const database = new PostgresDatabase(url);
      pools.push(database);
      return new PgApprovalRepository(database, instanceId);
    },
    async close() {
      await Promise.all(pools.map((p) => p.close()));
      await dropTestDatabase(url);
    },
  };
}

const backends: Array<[string, () => Promise<Backend>]> = [['SQLite', async () => sqliteBackend()]];
if (serversFor('the PostgreSQL half of the approval repository contract', { postgres: true })) backends.push(['PostgreSQL', postgresBackend]);

const NOW = 1_800_000_000_000;
let sequence = 0;
function approval(over: Partial<NewApproval> = {}): NewApproval {
  const n = ++sequence;
  return {
    id: `approv_${n}`,
    agent_id: 'agent_a',
    agent_version: '1.0.0',
    role: 'deployer',
    tool: 'write_file',
    request_id: `req_${n}`,
    envelope: '{}',
    envelope_sha256: 'e3b0',
    audit_id: `audit_${n}`,
    created_at: NOW + n,
    expires_at: NOW + 3_600_000,
    ...over,
  };
}
const approve = (now = NOW + 1000, leaseUntil = now + 60_000) => ({ approverId: 'admin', approved: true, comment: null, now, leaseUntil });

describe.each(backends)('The approval repository contract, on %s', (_name, open) => {
  jest.setTimeout(20_000);
  let backend: Backend;
  let a: ApprovalRepository;
  let b: ApprovalRepository;
  beforeEach(async () => {
    backend = await open();
    a = backend.repository('instance-a');
    b = backend.repository('instance-b');
  });
  afterEach(() => backend.close());

  it('stores a pending approval that every instance reads back as it was', async () => {
    const record = approval({ envelope: '{"tool":"write_file","arguments":{"path":"ü.txt"}}' });
    expect(await a.insertPending(record, 20)).toBe(true);
    expect(await b.get(record.id)).toEqual({
      ...record,
      status: 'pending',
      decided_by: null,
      decided_at: null,
      comment: null,
      result: null,
      error: null,
      claimed_by: null,
      claimed_at: null,
      lease_until: null,
    });
    expect(await b.get('approv_missing')).toBeUndefined();
  });

  it('holds the pending cap per agent; expired and decided approvals do not count', async () => {
    await a.insertPending(approval({ expires_at: NOW - 1, created_at: NOW - 10 }), 2);
    expect(await a.insertPending(approval(), 2)).toBe(true);
    const second = approval();
    expect(await b.insertPending(second, 2)).toBe(true);
    expect(await a.insertPending(approval(), 2)).toBe(false);
    expect(await b.insertPending(approval({ agent_id: 'agent_b' }), 2)).toBe(true);
    await a.decide(second.id, { ...approve(), approved: false });
    expect(await b.insertPending(approval(), 2)).toBe(true);
  });

  it('holds the cap when one agent floods two instances at once', async () => {
    const attempts = Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).insertPending(approval(), 5));
    const inserted = (await Promise.all(attempts)).filter(Boolean).length;
    expect(inserted).toBe(5);
    expect(await a.countPending(NOW)).toBe(5);
  });

  it('files one approval per (agent_id, request_id): a second, on any instance and even at the cap, is refused naming the first', async () => {
    const first = approval({ request_id: 'req_once' });
    expect(await a.insertPending(first, 1)).toBe(true);
    const again = [a, b, a, b].map((repository) => repository.insertPending(approval({ request_id: 'req_once' }), 20));
    for (const attempt of await Promise.allSettled(again)) {
      expect(attempt).toMatchObject({ status: 'rejected', reason: { httpStatus: 409, reasonCode: 'approval_already_filed', approvalId: first.id } });
    }
    await a.decide(first.id, { ...approve(), approved: false });
    await expect(b.insertPending(approval({ request_id: 'req_once' }), 20)).rejects.toBeInstanceOf(ApprovalAlreadyFiled);
    expect(await b.insertPending(approval({ request_id: 'req_once', agent_id: 'agent_b' }), 20)).toBe(true);
    expect((await a.list({ limit: 10 })).records.filter((r) => r.request_id === 'req_once').map((r) => r.agent_id)).toEqual(['agent_b', 'agent_a']);
  });

  it('lets exactly one of many concurrent decisions on two instances win, and records who claimed it', async () => {
    const record = approval();
    await a.insertPending(record, 20);
    const decisions = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).decide(record.id, { ...approve(), approverId: `approver_${i}` })));
    const winners = decisions.filter((d) => d !== undefined);
    expect(winners).toHaveLength(1);
    const stored = await a.get(record.id);
    expect(stored).toEqual(winners[0]);
    expect(stored).toMatchObject({ status: 'approved', claimed_at: NOW + 1000, lease_until: NOW + 61_000 });
    expect(['instance-a', 'instance-b']).toContain(stored!.claimed_by);
  });

  it('refuses to decide an expired approval, and a rejection claims nothing', async () => {
    const late = approval({ expires_at: NOW + 500 });
    await a.insertPending(late, 20);
    expect(await a.decide(late.id, approve(NOW + 500))).toBeUndefined();
    const rejected = approval();
    await a.insertPending(rejected, 20);
    expect(await a.decide(rejected.id, { ...approve(), approved: false, comment: 'no' })).toMatchObject({
      status: 'rejected',
      decided_by: 'admin',
      comment: 'no',
      claimed_by: null,
      lease_until: null,
    });
  });

  it('renews only its own claim, and not once the claim was failed', async () => {
    const record = approval();
    await a.insertPending(record, 20);
    await a.decide(record.id, approve());
    expect(await b.renewClaim(record.id, NOW + 90_000)).toBe(false);
    expect(await a.renewClaim(record.id, NOW + 90_000)).toBe(true);
    expect((await b.get(record.id))!.lease_until).toBe(NOW + 90_000);
    await b.expire(NOW + 90_000);
    expect(await a.renewClaim(record.id, NOW + 200_000)).toBe(false);
  });

  it('stores the outcome once; an undecided approval is pending again with no claim', async () => {
    const done = approval();
    await a.insertPending(done, 20);
    await a.decide(done.id, approve());
    await a.complete(done.id, { result: { bytes: 3 } });
    await b.complete(done.id, { error: INTERRUPTED });
    expect(await b.get(done.id)).toMatchObject({ status: 'executed', result: '{"bytes":3}', error: null, claimed_by: 'instance-a' });

    const reopened = approval();
    await a.insertPending(reopened, 20);
    await a.decide(reopened.id, approve());
    await a.undecide(reopened.id);
    expect(await b.get(reopened.id)).toMatchObject({
      status: 'pending',
      decided_by: null,
      decided_at: null,
      claimed_by: null,
      claimed_at: null,
      lease_until: null,
    });
    expect(await b.decide(reopened.id, approve())).toMatchObject({ status: 'approved', claimed_by: 'instance-b' });
  });

  it("withdraws only its own agent's pending, unexpired approval; then no one can decide it, and it can be pending again", async () => {
    const record = approval();
    await a.insertPending(record, 20);
    expect(await b.withdraw(record.id, 'agent_other', NOW + 1000)).toBeUndefined();
    expect(await b.withdraw(record.id, 'agent_a', NOW + 1000)).toMatchObject({ status: 'withdrawn', decided_at: NOW + 1000, decided_by: null });
    expect(await a.withdraw(record.id, 'agent_a', NOW + 2000)).toBeUndefined();
    expect(await a.decide(record.id, approve())).toBeUndefined();
    expect((await a.list({ status: 'withdrawn', limit: 10 })).records.map((r) => r.id)).toEqual([record.id]);
    await a.undecide(record.id);
    expect(await b.get(record.id)).toMatchObject({ status: 'pending', decided_at: null });
    const late = approval({ expires_at: NOW + 500 });
    await a.insertPending(late, 20);
    expect(await a.withdraw(late.id, 'agent_a', NOW + 500)).toBeUndefined();
    const decided = approval();
    await a.insertPending(decided, 20);
    await a.decide(decided.id, approve());
    expect(await a.withdraw(decided.id, 'agent_a', NOW + 2000)).toBeUndefined();
  });

  it('at start, fails only the interrupted approvals of its own instance', async () => {
    const [mine, theirs] = [approval(), approval()];
    for (const r of [mine, theirs]) await a.insertPending(r, 20);
    await a.decide(mine.id, approve());
    await b.decide(theirs.id, approve());
    expect(await a.failInterrupted()).toBe(1);
    expect(await a.get(mine.id)).toMatchObject({ status: 'failed', error: JSON.stringify(INTERRUPTED) });
    expect(await a.get(theirs.id)).toMatchObject({ status: 'approved', claimed_by: 'instance-b' });
    expect(await b.failInterrupted()).toBe(1);
    expect(await a.get(theirs.id)).toMatchObject({ status: 'failed' });
  });

  it('expires pending approvals past expires_at and fails approved ones past their lease, from any instance', async () => {
    const [stale, fresh, lapsed, running] = [approval({ expires_at: NOW + 100 }), approval(), approval(), approval()];
    for (const r of [stale, fresh, lapsed, running]) await a.insertPending(r, 20);
    await a.decide(lapsed.id, approve(NOW, NOW + 200));
    await a.decide(running.id, approve(NOW, NOW + 5000));
    await b.expire(NOW + 200);
    expect((await a.get(stale.id))!.status).toBe('expired');
    expect((await a.get(fresh.id))!.status).toBe('pending');
    expect(await a.get(lapsed.id)).toMatchObject({ status: 'failed', claimed_by: 'instance-a', error: JSON.stringify(INTERRUPTED) });
    expect((await a.get(running.id))!.status).toBe('approved');
    expect(await a.countPending(NOW + 200)).toBe(1);
  });

  it('lists newest first in pages, filtered by status and by the tools an approver may decide', async () => {
    const records = Array.from({ length: 5 }, (_, i) => approval({ created_at: NOW, tool: i % 2 ? 'delete_file' : 'write_file' }));
    for (const r of records) await a.insertPending(r, 20);
    await a.decide(records[4].id, { ...approve(), approved: false });
    const first = await b.list({ limit: 2 });
    expect(first.records.map((r) => r.id)).toEqual([records[4].id, records[3].id]);
    const second = await b.list({ limit: 2, cursor: first.nextCursor });
    expect(second.records.map((r) => r.id)).toEqual([records[2].id, records[1].id]);
    const last = await b.list({ limit: 2, cursor: second.nextCursor });
    expect([last.records.map((r) => r.id), last.nextCursor]).toEqual([[records[0].id], undefined]);
    expect((await b.list({ limit: 10, status: 'pending', tools: ['write_file'] })).records.map((r) => r.id)).toEqual([records[2].id, records[0].id]);
    expect((await b.list({ limit: 10, tools: [] })).records).toEqual([]);
    await expect(b.list({ limit: 2, cursor: 'not-a-cursor' })).rejects.toBeInstanceOf(InvalidRequest);
  });

  it('purges settled approvals older than the retention, never pending or running ones', async () => {
    const [rejectedEarly, expired, rejectedLate, running, waiting] = [approval(), approval({ expires_at: NOW + 10 }), approval(), approval(), approval()];
    for (const r of [rejectedEarly, expired, rejectedLate, running, waiting]) await a.insertPending(r, 20);
    await a.decide(rejectedEarly.id, { ...approve(NOW + 1), approved: false });
    await a.expire(NOW + 10);
    await a.decide(rejectedLate.id, { ...approve(NOW + 5000), approved: false });
    await a.decide(running.id, approve(NOW + 1, NOW + 10_000_000));
    expect(await b.purge(NOW + 1000)).toBe(2);
    expect(await a.get(rejectedEarly.id)).toBeUndefined();
    expect(await a.get(expired.id)).toBeUndefined();
    expect((await a.get(rejectedLate.id))!.status).toBe('rejected');
    expect((await a.get(running.id))!.status).toBe('approved');
    expect((await a.get(waiting.id))!.status).toBe('pending');
  });
});

it('keeps approvals filed twice for one request_id before the unique rule: the later ones are renamed, none is lost', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'approvals-dup-'));
  try {
    const file = join(dataDir, 'gateway.db');
    const before = openSqlite(file, SQLITE_MIGRATIONS.slice(0, 3), 'FULL');
    const insert = before.prepare(
      `INSERT INTO approvals (id, status, agent_id, agent_version, role, tool, request_id, envelope, envelope_sha256, audit_id, created_at, expires_at)
       VALUES (@id, 'pending', @agent_id, @agent_version, @role, @tool, @request_id, @envelope, @envelope_sha256, @audit_id, @created_at, @expires_at)`,
    );
    for (const id of ['approv_first', 'approv_second']) insert.run(approval({ id, request_id: 'req_twice' }));
    before.close();
    const after = openSqlite(file, SQLITE_MIGRATIONS, 'FULL');
    expect(after.prepare('SELECT id, request_id FROM approvals ORDER BY rowid').all()).toEqual([
      { id: 'approv_first', request_id: 'req_twice' },
      { id: 'approv_second', request_id: 'req_twice#dup-approv_second' },
    ]);
    after.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

if (backends.length > 1) {
  it('migrates one PostgreSQL database from two instances starting at once', async () => {
    const url = await createTestDatabase();
    const [one, two] = [new PostgresDatabase(url), new PostgresDatabase(url)];
    try {
      await Promise.all([one.migrate(), two.migrate()]);
      const { rows } = await one.query<{ version: number }>('SELECT version FROM schema_migrations');
      expect(rows).toHaveLength(1);
    } finally {
      await Promise.all([one.close(), two.close()]);
      await dropTestDatabase(url);
    }
  });
}
