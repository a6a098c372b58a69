import type { Statement, Transaction } from 'better-sqlite3';
import { SqliteDatabase } from '../database/sqlite-database';
import {
  ApprovalAlreadyFiled,
  ApprovalPage,
  ApprovalQuery,
  ApprovalRecord,
  ApprovalRepository,
  Decision,
  INTERRUPTED,
  NewApproval,
  PagePosition,
  pageOf,
  pageStart,
  StoredError,
} from './approval.repository';

/** A page: after this (created_at, rowid), newest first. */
type PageStart = PagePosition & { tools: string | null; limit: number };
type ListedRow = ApprovalRecord & { seq: number };
type ClaimParams = Omit<Decision, 'approved'> & { approved: 0 | 1; id: string; status: 'approved' | 'rejected'; instance: string };

/** Approvals in the embedded database (`$GATEWAY_DATA_DIR/gateway.db`): one instance. */
export class SqliteApprovalRepository extends ApprovalRepository {
  private readonly countPendingOf: Statement<[string, number], { n: number }>;
  private readonly countAllPending: Statement<[number], { n: number }>;
  private readonly insert: Statement<NewApproval>;
  private readonly byId: Statement<[string], ApprovalRecord>;
  private readonly idByRequest: Statement<[string, string], string>;
  private readonly all: Statement<PageStart, ListedRow>;
  private readonly byStatus: Statement<PageStart & { status: string }, ListedRow>;
  private readonly claim: Statement<ClaimParams, ApprovalRecord>;
  private readonly takeBack: Statement<[number, string, string, number], ApprovalRecord>;
  private readonly renew: Statement<[number, string, string]>;
  private readonly reopen: Statement<[string]>;
  private readonly finish: Statement<[string, string | null, string | null, string]>;
  private readonly expirePending: Statement<[number]>;
  private readonly failLapsed: Statement<[string, number]>;
  private readonly failOwn: Statement<[string, string]>;
  private readonly deleteSettled: Statement<[number]>;
  private readonly insertIfRoom: Transaction<(record: NewApproval, maxPending: number) => boolean>;

  constructor(
    database: SqliteDatabase,
    private readonly instanceId: string,
  ) {
    super();
    const db = database.db;
    this.countPendingOf = db.prepare("SELECT COUNT(*) AS n FROM approvals WHERE agent_id = ? AND status = 'pending' AND expires_at > ?");
    this.countAllPending = db.prepare("SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending' AND expires_at > ?");
    this.insert = db.prepare(
      `INSERT INTO approvals (id, status, agent_id, agent_version, role, tool, request_id, envelope, envelope_sha256, audit_id, created_at, expires_at)
       VALUES (@id, 'pending', @agent_id, @agent_version, @role, @tool, @request_id, @envelope, @envelope_sha256, @audit_id, @created_at, @expires_at)`,
    );
    this.byId = db.prepare('SELECT * FROM approvals WHERE id = ?');
    this.idByRequest = db.prepare<[string, string], string>('SELECT id FROM approvals WHERE agent_id = ? AND request_id = ?').pluck();
    const page = `(created_at, rowid) < (@created_at, @seq)
       AND (@tools IS NULL OR tool IN (SELECT value FROM json_each(@tools)))
       ORDER BY created_at DESC, rowid DESC LIMIT @limit`;
    this.all = db.prepare(`SELECT rowid AS seq, * FROM approvals WHERE ${page}`);
    this.byStatus = db.prepare(`SELECT rowid AS seq, * FROM approvals WHERE status = @status AND ${page}`);
    this.claim = db.prepare(
      `UPDATE approvals SET status = @status, decided_by = @approverId, decided_at = @now, comment = @comment,
         claimed_by = CASE WHEN @approved THEN @instance END, claimed_at = CASE WHEN @approved THEN @now END, lease_until = CASE WHEN @approved THEN @leaseUntil END
       WHERE id = @id AND status = 'pending' AND expires_at > @now RETURNING *`,
    );
    this.takeBack = db.prepare(
      "UPDATE approvals SET status = 'withdrawn', decided_at = ? WHERE id = ? AND agent_id = ? AND status = 'pending' AND expires_at > ? RETURNING *",
    );
    this.renew = db.prepare("UPDATE approvals SET lease_until = ? WHERE id = ? AND status = 'approved' AND claimed_by = ?");
    this.reopen = db.prepare(
      `UPDATE approvals SET status = 'pending', decided_by = NULL, decided_at = NULL, comment = NULL, claimed_by = NULL, claimed_at = NULL, lease_until = NULL
       WHERE id = ? AND status IN ('approved', 'rejected', 'withdrawn')`,
    );
    this.finish = db.prepare("UPDATE approvals SET status = ?, result = ?, error = ? WHERE id = ? AND status = 'approved'");
    this.expirePending = db.prepare("UPDATE approvals SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?");
    this.failLapsed = db.prepare("UPDATE approvals SET status = 'failed', error = ? WHERE status = 'approved' AND lease_until <= ?");
    this.failOwn = db.prepare("UPDATE approvals SET status = 'failed', error = ? WHERE status = 'approved' AND (claimed_by = ? OR claimed_by IS NULL)");
    this.deleteSettled = db.prepare(
      "DELETE FROM approvals WHERE status IN ('executed', 'rejected', 'expired', 'failed', 'withdrawn') AND COALESCE(decided_at, expires_at) < ?",
    );
    // One transaction: the count and the insert cannot interleave with another request's.
    this.insertIfRoom = db.transaction((record: NewApproval, maxPending: number) => {
      const filed = this.idByRequest.get(record.agent_id, record.request_id);
      if (filed !== undefined) throw new ApprovalAlreadyFiled(filed);
      if (this.countPendingOf.get(record.agent_id, record.created_at)!.n >= maxPending) return false;
      this.insert.run(record);
      return true;
    });
  }

  async insertPending(record: NewApproval, maxPending: number): Promise<boolean> {
    return this.insertIfRoom.immediate(record, maxPending);
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    return this.byId.get(id);
  }

  async list(query: ApprovalQuery): Promise<ApprovalPage> {
    // One row more than asked tells whether another page follows.
    const start: PageStart = { ...pageStart(query.cursor), tools: query.tools ? JSON.stringify(query.tools) : null, limit: query.limit + 1 };
    return pageOf(query.status ? this.byStatus.all({ ...start, status: query.status }) : this.all.all(start), query.limit);
  }

  async decide(id: string, d: Decision): Promise<ApprovalRecord | undefined> {
    return this.claim.get({ ...d, approved: d.approved ? 1 : 0, id, status: d.approved ? 'approved' : 'rejected', instance: this.instanceId });
  }

  async withdraw(id: string, agentId: string, now: number): Promise<ApprovalRecord | undefined> {
    return this.takeBack.get(now, id, agentId, now);
  }

  async renewClaim(id: string, leaseUntil: number): Promise<boolean> {
    return this.renew.run(leaseUntil, id, this.instanceId).changes === 1;
  }

  async undecide(id: string): Promise<void> {
    this.reopen.run(id);
  }

  async complete(id: string, outcome: { result: unknown } | { error: StoredError }): Promise<void> {
    if ('result' in outcome) this.finish.run('executed', JSON.stringify(outcome.result), null, id);
    else this.finish.run('failed', null, JSON.stringify(outcome.error), id);
  }

  async expire(now: number): Promise<void> {
    this.expirePending.run(now);
    this.failLapsed.run(JSON.stringify(INTERRUPTED), now);
  }

  async countPending(now: number): Promise<number> {
    return this.countAllPending.get(now)!.n;
  }

  async purge(before: number): Promise<number> {
    return this.deleteSettled.run(before).changes;
  }

  async failInterrupted(): Promise<number> {
    return this.failOwn.run(JSON.stringify(INTERRUPTED), this.instanceId).changes;
  }
}
