import type Database from 'better-sqlite3';
import type { Statement, Transaction } from 'better-sqlite3';
import { openSqlite } from '../database/sqlite-database';

export const AUDIT_INDEX_MIGRATIONS: readonly string[] = [
  `CREATE TABLE records (
     seq        INTEGER PRIMARY KEY,
     audit_id   TEXT NOT NULL,
     request_id TEXT,
     agent_id   TEXT,
     hash       TEXT NOT NULL,
     offset     INTEGER NOT NULL,
     length     INTEGER NOT NULL
   );
   CREATE INDEX records_by_audit_id ON records (audit_id);
   CREATE INDEX records_by_request_id ON records (request_id);
   CREATE INDEX records_by_agent_id ON records (agent_id, seq);`,
];

export interface IndexRow {
  seq: number;
  audit_id: string;
  request_id: string | null;
  agent_id: string | null;
  hash: string;
  /** Byte offset of the line in the audit file, and its length including the newline. */
  offset: number;
  length: number;
}

export interface AuditQuery {
  request_id?: string;
  agent_id?: string;
  audit_id?: string;
  limit: number;
}

/**
 * Where each audit record sits in the file, by seq, with its hash. Its newest row is the chain's
 * head kept outside the file, so records removed from the end of the file are noticed.
 * A separate SQLite file beside gateway.db. When it is lost, the gateway refuses to start until
 * `npm run audit:verify -- --rebuild-index` has checked the whole chain and rebuilt it.
 */
export class AuditIndex {
  private readonly db: Database.Database;
  private readonly insertRow: Statement<unknown[]>;
  private readonly last: Statement<[], IndexRow>;
  readonly insertBatch: Transaction<(rows: IndexRow[]) => void>;

  constructor(file: string) {
    this.db = openSqlite(file, AUDIT_INDEX_MIGRATIONS, 'NORMAL');
    this.insertRow = this.db.prepare('INSERT INTO records (seq, audit_id, request_id, agent_id, hash, offset, length) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.last = this.db.prepare('SELECT * FROM records ORDER BY seq DESC LIMIT 1');
    // Positional parameters: binding named ones from an object costs more, on every record.
    this.insertBatch = this.db.transaction((rows: IndexRow[]) => {
      for (const r of rows) this.insertRow.run(r.seq, r.audit_id, r.request_id, r.agent_id, r.hash, r.offset, r.length);
    });
  }

  /**
   * Replaces every row with the ones `fill` inserts, in one transaction that is committed only
   * when `fill` answers ok: otherwise the index is left as it was.
   */
  replaceAll<T extends { ok: boolean }>(fill: (insert: (rows: IndexRow[]) => void) => T): T {
    let outcome: T | undefined;
    const keep = new Error('keep the index as it was');
    try {
      this.db.transaction(() => {
        this.db.exec('DELETE FROM records');
        outcome = fill((rows) => rows.forEach((r) => this.insertRow.run(r.seq, r.audit_id, r.request_id, r.agent_id, r.hash, r.offset, r.length)));
        if (!outcome.ok) throw keep;
      })();
    } catch (err) {
      if (err !== keep) throw err;
    }
    return outcome!;
  }

  head(): IndexRow | undefined {
    return this.last.get();
  }

  /** Rows after `seq`, in seq order, at most `limit`. */
  after(seq: number, limit: number): IndexRow[] {
    return this.db.prepare<[number, number], IndexRow>('SELECT * FROM records WHERE seq > ? ORDER BY seq LIMIT ?').all(seq, limit);
  }

  /** Matching rows in seq order, the newest `limit` of them. */
  find(query: AuditQuery): IndexRow[] {
    const where: string[] = [];
    const params: string[] = [];
    for (const key of ['request_id', 'agent_id', 'audit_id'] as const) {
      if (query[key] !== undefined) {
        where.push(`${key} = ?`);
        params.push(query[key]);
      }
    }
    const sql = `SELECT * FROM (SELECT * FROM records ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?) ORDER BY seq`;
    return this.db.prepare<unknown[], IndexRow>(sql).all(...params, query.limit);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
