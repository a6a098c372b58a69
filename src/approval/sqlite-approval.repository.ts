import { Injectable } from '@nestjs/common';
import type { Statement, Transaction } from 'better-sqlite3';
import { InvalidRequest } from '../common/errors';
import { SqliteDatabase } from '../database/sqlite-database';
import { ApprovalPage, ApprovalQuery, ApprovalRecord, ApprovalRepository, Decision, NewApproval, StoredError } from './approval.repository';

/** Where a page starts: after this (created_at, rowid), in newest-first order. */
interface PageStart {
  created_at: number;
  seq: number;
  tools: string | null;
  limit: number;
}
type ListedRow = ApprovalRecord & { seq: number };

const CURSOR = /^([0-9]{1,15})\.([0-9]{1,15})$/;
const FIRST_PAGE = { created_at: Number.MAX_SAFE_INTEGER, seq: Number.MAX_SAFE_INTEGER };

@Injectable()
export class SqliteApprovalRepository extends ApprovalRepository {
  private readonly countPendingOf: Statement<[string, number], { n: number }>;
  private readonly countAllPending: Statement<[number], { n: number }>;
  private readonly insert: Statement<NewApproval>;
  private readonly byId: Statement<[string], ApprovalRecord>;
  private readonly all: Statement<PageStart, ListedRow>;
  private readonly byStatus: Statement<PageStart & { status: string }, ListedRow>;
  private readonly claim: Statement<[string, string, number, string | null, string, number], ApprovalRecord>;
  private readonly reopen: Statement<[string]>;
  private readonly finish: Statement<[string, string | null, string | null, string]>;
  private readonly expirePending: Statement<[number]>;
  private readonly failApproved: Statement<[string]>;
  private readonly deleteSettled: Statement<[number]>;
  private readonly insertIfRoom: Transaction<(record: NewApproval, maxPending: number) => boolean>;

  constructor(database: SqliteDatabase) {
    super();
    const db = database.db;
    this.countPendingOf = db.prepare("SELECT COUNT(*) AS n FROM approvals WHERE agent_id = ? AND status = 'pending' AND expires_at > ?");
    this.countAllPending = db.prepare("SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending' AND expires_at > ?");
    this.insert = db.prepare(
      `INSERT INTO approvals (id, status, agent_id, agent_version, role, tool, request_id, envelope, envelope_sha256, audit_id, created_at, expires_at)
       VALUES (@id, 'pending', @agent_id, @agent_version, @role, @tool, @request_id, @envelope, @envelope_sha256, @audit_id, @created_at, @expires_at)`,
    );
    this.byId = db.prepare('SELECT * FROM approvals WHERE id = ?');
    const page = `(created_at, rowid) < (@created_at, @seq)
       AND (@tools IS NULL OR tool IN (SELECT value FROM json_each(@tools)))
       ORDER BY created_at DESC, rowid DESC LIMIT @limit`;
    this.all = db.prepare(`SELECT rowid AS seq, * FROM approvals WHERE ${page}`);
    this.byStatus = db.prepare(`SELECT rowid AS seq, * FROM approvals WHERE status = @status AND ${page}`);
    this.claim = db.prepare(
      `UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, comment = ?
       WHERE id = ? AND status = 'pending' AND expires_at > ? RETURNING *`,
    );
    this.reopen = db.prepare(
      "UPDATE approvals SET status = 'pending', decided_by = NULL, decided_at = NULL, comment = NULL WHERE id = ? AND status IN ('approved', 'rejected')",
    );
    this.finish = db.prepare("UPDATE approvals SET status = ?, result = ?, error = ? WHERE id = ? AND status = 'approved'");
    this.expirePending = db.prepare("UPDATE approvals SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?");
    this.failApproved = db.prepare("UPDATE approvals SET status = 'failed', error = ? WHERE status = 'approved'");
    this.deleteSettled = db.prepare(
      "DELETE FROM approvals WHERE status IN ('executed', 'rejected', 'expired', 'failed') AND COALESCE(decided_at, expires_at) < ?",
    );
    // One transaction: the count and the insert cannot interleave with another request's.
    this.insertIfRoom = db.transaction((record: NewApproval, maxPending: number) => {
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
    const start: PageStart = { ...parseCursor(query.cursor), tools: query.tools ? JSON.stringify(query.tools) : null, limit: query.limit + 1 };
    const rows = query.status ? this.byStatus.all({ ...start, status: query.status }) : this.all.all(start);
    const records = rows.slice(0, query.limit).map(({ seq: _seq, ...record }) => record);
    const last = rows.length > query.limit ? rows[query.limit - 1] : undefined;
    return { records, nextCursor: last && `${last.created_at}.${last.seq}` };
  }

  async decide(id: string, d: Decision): Promise<ApprovalRecord | undefined> {
    return this.claim.get(d.approved ? 'approved' : 'rejected', d.approverId, d.now, d.comment, id, d.now);
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
  }

  async countPending(now: number): Promise<number> {
    return this.countAllPending.get(now)!.n;
  }

  async purge(before: number): Promise<number> {
    return this.deleteSettled.run(before).changes;
  }

  async failInterrupted(): Promise<number> {
    const error: StoredError = {
      http_status: 500,
      status: 'tool_error',
      reason_code: 'interrupted',
      error: 'The gateway stopped after this call was approved and before its outcome was stored; it was not re-run. Check the workspace, then ask again if needed.',
    };
    return this.failApproved.run(JSON.stringify(error)).changes;
  }
}

function parseCursor(cursor: string | undefined): { created_at: number; seq: number } {
  if (cursor === undefined) return FIRST_PAGE;
  const match = CURSOR.exec(cursor);
  if (!match) throw new InvalidRequest('invalid_query', 'cursor must be the next_cursor of a previous page');
  return { created_at: Number(match[1]), seq: Number(match[2]) };
}
