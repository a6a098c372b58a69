import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { Provider } from '@nestjs/common';
import { GatewayConfig } from '../config/gateway-config';
import { InstanceId } from '../config/instance-id';
import { PostgresDatabase } from '../database/postgres-database';
import { openSqlite } from '../database/sqlite-database';

/**
 * Per audit_sinks name, the seq of the last record of this instance's chain that the sink
 * acknowledged: where its export resumes after an outage or a restart. Kept beside the chain: in
 * the data dir (`audit-sinks.db`, next to the audit index) with the file store, in PostgreSQL with the shared one.
 */
export abstract class SinkCursors {
  /** 0 when the sink never acknowledged anything. */
  abstract get(sink: string): Promise<number>;
  abstract set(sink: string, seq: number): Promise<void>;
  abstract close(): Promise<void>;
}

const SQLITE_MIGRATIONS = ['CREATE TABLE cursors (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL);'];

export class SqliteSinkCursors extends SinkCursors {
  private readonly db: Database.Database;

  constructor(file: string) {
    super();
    this.db = openSqlite(file, SQLITE_MIGRATIONS, 'FULL');
  }

  async get(sink: string): Promise<number> {
    return this.db.prepare<[string], { seq: number }>('SELECT seq FROM cursors WHERE sink = ?').get(sink)?.seq ?? 0;
  }

  async set(sink: string, seq: number): Promise<void> {
    this.db.prepare('INSERT INTO cursors (sink, seq) VALUES (?, ?) ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq').run(sink, seq);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

export class PostgresSinkCursors extends SinkCursors {
  constructor(
    private readonly database: PostgresDatabase,
    private readonly instanceId: string,
  ) {
    super();
  }

  async get(sink: string): Promise<number> {
    const { rows } = await this.database.query<{ seq: string }>('SELECT seq FROM audit_sink_cursors WHERE instance_id = $1 AND sink = $2', [
      this.instanceId,
      sink,
    ]);
    return rows.length === 0 ? 0 : Number(rows[0].seq);
  }

  async set(sink: string, seq: number): Promise<void> {
    await this.database.query(
      'INSERT INTO audit_sink_cursors (instance_id, sink, seq) VALUES ($1, $2, $3) ON CONFLICT (instance_id, sink) DO UPDATE SET seq = EXCLUDED.seq',
      [this.instanceId, sink, seq],
    );
  }

  /** The pool belongs to the database provider, which closes it. */
  async close(): Promise<void> {}
}

/** Beside the audit chain, as the audit store is chosen; null when no sink is configured (no file is made). */
export const sinkCursorsProvider: Provider = {
  provide: SinkCursors,
  inject: [GatewayConfig, InstanceId, PostgresDatabase],
  useFactory: (config: GatewayConfig, instance: InstanceId, database: PostgresDatabase | null): SinkCursors | null => {
    if (config.auditSinks.length === 0) return null;
    return database ? new PostgresSinkCursors(database, instance.value) : new SqliteSinkCursors(join(config.paths.dataDir, 'audit-sinks.db'));
  },
};
