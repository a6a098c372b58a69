import type { PostgresDatabase } from '../database/postgres-database';
import type { AuditQuery } from './audit-index';
import { AuditRecord, AuditSeal, GENESIS_HASH, sealProblem, verifySeal } from './audit-record';
import { AuditStore, ChainHead, SealedRecord, StoredLine } from './audit-store';

const VERIFY_HINT = 'Run npm run audit:verify -- --database';

/**
 * The shared store (GATEWAY_DATABASE_URL): each instance's chain in `audit_records`, keyed by
 * (instance_id, seq), and its head in `audit_heads`. A batch is one multi-row INSERT and the head's
 * UPDATE in one transaction, so records and head never disagree, and the UPDATE only moves the
 * head it started from: a second writer on the same chain (two instances given one
 * GATEWAY_INSTANCE_ID) fails its write instead of forking the chain.
 */
export class PostgresAuditStore extends AuditStore {
  constructor(
    private readonly database: PostgresDatabase,
    private readonly instanceId: string,
  ) {
    super();
  }

  /** Creates this instance's head on first start; otherwise checks the record it names is still there, unchanged. */
  async open(seal: AuditSeal): Promise<ChainHead> {
    await this.database.query('INSERT INTO audit_heads (instance_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (instance_id) DO NOTHING', [
      this.instanceId,
      GENESIS_HASH,
    ]);
    const head = await this.reopen();
    if (head.seq === 0) return head;
    const at = `audit chain of instance "${this.instanceId}" in PostgreSQL: record seq ${head.seq}`;
    const { rows } = await this.database.query<{ line: string }>('SELECT line FROM audit_records WHERE instance_id = $1 AND seq = $2', [
      this.instanceId,
      head.seq,
    ]);
    if (rows.length === 0) throw new Error(`${at}, which its head names, is missing: records were removed. ${VERIFY_HINT}`);
    const hash = verifySeal(rows[0].line, seal);
    if (hash === undefined) throw new Error(`${at}: ${sealProblem(rows[0].line, seal)}. ${VERIFY_HINT}`);
    if (hash !== head.hash) throw new Error(`${at} no longer matches its head: the record was changed. ${VERIFY_HINT}`);
    return head;
  }

  async write(records: SealedRecord[], from: ChainHead): Promise<void> {
    const last = records[records.length - 1];
    await this.database.transaction(async (client) => {
      const moved = await client.query('UPDATE audit_heads SET seq = $2, hash = $3 WHERE instance_id = $1 AND seq = $4 AND hash = $5', [
        this.instanceId,
        last.seq,
        last.hash,
        from.seq,
        from.hash,
      ]);
      if (moved.rowCount !== 1) throw new Error(`the head of audit chain "${this.instanceId}" was moved by another writer`);
      // One statement for the whole batch, whatever its size: each column is one array parameter.
      await client.query(
        `INSERT INTO audit_records (instance_id, seq, ts, audit_id, request_id, agent_id, hash, line)
         SELECT $1, * FROM unnest($2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])`,
        [
          this.instanceId,
          records.map((r) => r.seq),
          records.map((r) => r.ts),
          records.map((r) => r.fields.audit_id),
          records.map((r) => r.fields.request_id ?? null),
          records.map((r) => r.fields.agent_id ?? null),
          records.map((r) => r.hash),
          records.map((r) => r.line),
        ],
      );
    });
  }

  /**
   * FOR SHARE waits for a write of this chain still in flight (a COMMIT sent on a connection that
   * was then lost) to end, so the head read is the one that write left, committed or not.
   */
  async reopen(): Promise<ChainHead> {
    const { rows } = await this.database.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_heads WHERE instance_id = $1 FOR SHARE', [
      this.instanceId,
    ]);
    if (rows.length === 0) throw new Error(`audit chain "${this.instanceId}" has no head in PostgreSQL (audit_heads)`);
    return { seq: Number(rows[0].seq), hash: rows[0].hash };
  }

  /** Across every instance's chain, ordered by time (then instance and seq). */
  async find(query: AuditQuery): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    for (const key of ['request_id', 'agent_id', 'audit_id'] as const) {
      if (query[key] !== undefined) {
        params.push(query[key]);
        where.push(`${key} = $${params.length}`);
      }
    }
    params.push(query.limit);
    const { rows } = await this.database.query<{ line: string }>(
      `SELECT line FROM audit_records ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY ts DESC, instance_id DESC, seq DESC LIMIT $${params.length}`,
      params,
    );
    return rows.reverse().map((r) => JSON.parse(r.line) as AuditRecord);
  }

  async readAfter(seq: number, limit: number): Promise<StoredLine[]> {
    const { rows } = await this.database.query<{ seq: string; line: string }>(
      'SELECT seq, line FROM audit_records WHERE instance_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
      [this.instanceId, seq, limit],
    );
    return rows.map((r) => ({ seq: Number(r.seq), line: r.line }));
  }

  async lastSeq(): Promise<number> {
    const { rows } = await this.database.query<{ seq: string }>('SELECT seq FROM audit_heads WHERE instance_id = $1', [this.instanceId]);
    return rows.length === 0 ? 0 : Number(rows[0].seq);
  }

  /** The pool belongs to the database provider, which closes it. */
  async close(): Promise<void> {}
}
