import { PostgresDatabase } from '../database/postgres-database';
import {
  ApprovalAlreadyFiled,
  ApprovalPage,
  ApprovalQuery,
  ApprovalRecord,
  ApprovalRepository,
  Decision,
  INTERRUPTED,
  NewApproval,
  pageOf,
  pageStart,
  StoredError,
} from './approval.repository';

// The first key of the advisory lock taken per agent while its pending approvals are counted.
const PENDING_CAP_LOCK = 731_425_002;
const BIGINT_COLUMNS = ['created_at', 'expires_at', 'decided_at', 'claimed_at', 'lease_until', 'seq'] as const;
type Row = Record<string, unknown>;

/**
 * Approvals in PostgreSQL (GATEWAY_DATABASE_URL), shared by every instance. Each state change is
 * one conditional UPDATE … RETURNING, so of two instances deciding the same approval exactly one
 * wins. The pending cap and the one-approval-per-request_id rule are checked and filled under a
 * per-agent advisory lock, so one agent flooding several instances at once still gets no more.
 */
export class PgApprovalRepository extends ApprovalRepository {
  constructor(
    private readonly database: PostgresDatabase,
    private readonly instanceId: string,
  ) {
    super();
  }

  async insertPending(r: NewApproval, maxPending: number): Promise<boolean> {
    return this.database.transaction(async (client) => {
      // Held until COMMIT; the INSERT below starts after it is granted, so its count sees every
      // approval an earlier holder inserted (READ COMMITTED: each statement reads what is committed).
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [PENDING_CAP_LOCK, r.agent_id]);
      const filed = await client.query<{ id: string }>('SELECT id FROM approvals WHERE agent_id = $1 AND request_id = $2', [r.agent_id, r.request_id]);
      if (filed.rows[0]) throw new ApprovalAlreadyFiled(filed.rows[0].id);
      const { rowCount } = await client.query(
        `INSERT INTO approvals (id, status, agent_id, agent_version, role, tool, request_id, envelope, envelope_sha256, audit_id, created_at, expires_at)
         SELECT $1, 'pending', $2, $3, $4, $5, $6, $7, $8, $9, $10::bigint, $11::bigint
         WHERE (SELECT count(*) FROM approvals WHERE agent_id = $2 AND status = 'pending' AND expires_at > $10::bigint) < $12::bigint`,
        [r.id, r.agent_id, r.agent_version, r.role, r.tool, r.request_id, r.envelope, r.envelope_sha256, r.audit_id, r.created_at, r.expires_at, maxPending],
      );
      return rowCount === 1;
    });
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const { rows } = await this.database.query('SELECT * FROM approvals WHERE id = $1', [id]);
    return rows[0] && withoutSeq(toRecord(rows[0]));
  }

  async list(query: ApprovalQuery): Promise<ApprovalPage> {
    const start = pageStart(query.cursor);
    // One row more than asked tells whether another page follows.
    const { rows } = await this.database.query(
      `SELECT * FROM approvals
       WHERE ($1::text IS NULL OR status = $1) AND ($2::text[] IS NULL OR tool = ANY($2::text[])) AND (created_at, seq) < ($3::bigint, $4::bigint)
       ORDER BY created_at DESC, seq DESC LIMIT $5`,
      [query.status ?? null, query.tools ?? null, start.created_at, start.seq, query.limit + 1],
    );
    return pageOf(rows.map(toRecord), query.limit);
  }

  async decide(id: string, d: Decision): Promise<ApprovalRecord | undefined> {
    const { rows } = await this.database.query(
      `UPDATE approvals SET status = $2, decided_by = $3, decided_at = $4::bigint, comment = $5,
         claimed_by = CASE WHEN $6::boolean THEN $7 END,
         claimed_at = CASE WHEN $6::boolean THEN $4::bigint END,
         lease_until = CASE WHEN $6::boolean THEN $8::bigint END
       WHERE id = $1 AND status = 'pending' AND expires_at > $4::bigint
       RETURNING *`,
      [id, d.approved ? 'approved' : 'rejected', d.approverId, d.now, d.comment, d.approved, this.instanceId, d.leaseUntil],
    );
    return rows[0] && withoutSeq(toRecord(rows[0]));
  }

  async withdraw(id: string, agentId: string, now: number): Promise<ApprovalRecord | undefined> {
    const { rows } = await this.database.query(
      "UPDATE approvals SET status = 'withdrawn', decided_at = $3::bigint WHERE id = $1 AND agent_id = $2 AND status = 'pending' AND expires_at > $3::bigint RETURNING *",
      [id, agentId, now],
    );
    return rows[0] && withoutSeq(toRecord(rows[0]));
  }

  async renewClaim(id: string, leaseUntil: number): Promise<boolean> {
    const { rowCount } = await this.database.query("UPDATE approvals SET lease_until = $2 WHERE id = $1 AND status = 'approved' AND claimed_by = $3", [
      id,
      leaseUntil,
      this.instanceId,
    ]);
    return rowCount === 1;
  }

  async undecide(id: string): Promise<void> {
    await this.database.query(
      `UPDATE approvals SET status = 'pending', decided_by = NULL, decided_at = NULL, comment = NULL, claimed_by = NULL, claimed_at = NULL, lease_until = NULL
       WHERE id = $1 AND status IN ('approved', 'rejected', 'withdrawn')`,
      [id],
    );
  }

  async complete(id: string, outcome: { result: unknown } | { error: StoredError }): Promise<void> {
    const [status, result, error] = 'result' in outcome ? ['executed', JSON.stringify(outcome.result), null] : ['failed', null, JSON.stringify(outcome.error)];
    await this.database.query("UPDATE approvals SET status = $2, result = $3, error = $4 WHERE id = $1 AND status = 'approved'", [id, status, result, error]);
  }

  async expire(now: number): Promise<void> {
    await this.database.query(
      `UPDATE approvals
       SET status = CASE status WHEN 'pending' THEN 'expired' ELSE 'failed' END,
           error = CASE status WHEN 'approved' THEN $2 ELSE error END
       WHERE (status = 'pending' AND expires_at <= $1::bigint) OR (status = 'approved' AND lease_until <= $1::bigint)`,
      [now, JSON.stringify(INTERRUPTED)],
    );
  }

  async countPending(now: number): Promise<number> {
    const { rows } = await this.database.query<{ n: number }>("SELECT count(*)::int AS n FROM approvals WHERE status = 'pending' AND expires_at > $1", [now]);
    return rows[0].n;
  }

  async purge(before: number): Promise<number> {
    const { rowCount } = await this.database.query(
      "DELETE FROM approvals WHERE status IN ('executed', 'rejected', 'expired', 'failed', 'withdrawn') AND COALESCE(decided_at, expires_at) < $1",
      [before],
    );
    return rowCount ?? 0;
  }

  async failInterrupted(): Promise<number> {
    const { rowCount } = await this.database.query(
      "UPDATE approvals SET status = 'failed', error = $1 WHERE status = 'approved' AND (claimed_by = $2 OR claimed_by IS NULL)",
      [JSON.stringify(INTERRUPTED), this.instanceId],
    );
    return rowCount ?? 0;
  }
}

/** pg reads bigint as a string (it may not fit a double); these Unix-ms times and sequence numbers do. */
function toRecord(row: Row): ApprovalRecord & { seq: number } {
  const record = { ...row };
  for (const column of BIGINT_COLUMNS) if (record[column] !== null && record[column] !== undefined) record[column] = Number(record[column]);
  return record as unknown as ApprovalRecord & { seq: number };
}

function withoutSeq({ seq: _seq, ...record }: ApprovalRecord & { seq: number }): ApprovalRecord {
  return record;
}
