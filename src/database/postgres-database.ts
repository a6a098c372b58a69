import { Logger } from '@nestjs/common';
import { Pool, PoolClient } from 'pg';
import { PG_MIGRATIONS } from './pg-migrations';

// Any 64-bit number that is this gateway's own: the lock migrations run under.
const MIGRATION_LOCK = 7_314_250_001;

/**
 * The shared PostgreSQL database (GATEWAY_DATABASE_URL): one pool per instance, migrated at start.
 * Queries that cannot reach the server fail at once (no queueing behind a dead connection), so a
 * request is refused (503) rather than left hanging; the pool reconnects by itself.
 */
export class PostgresDatabase {
  private readonly logger = new Logger(PostgresDatabase.name);
  readonly pool: Pool;

  constructor(
    url: string,
    private readonly migrations: readonly string[] = PG_MIGRATIONS,
  ) {
    this.pool = new Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 2000, idleTimeoutMillis: 30_000 });
    // An idle client that loses its server emits 'error' on the pool: log it, the next query reconnects.
    this.pool.on('error', (err) => this.logger.warn(`PostgreSQL connection lost (${(err as NodeJS.ErrnoException).code ?? err.name}); reconnecting on next use`));
  }

  /** Applies the migrations this database has not seen, under an advisory lock. */
  async migrate(): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer NOT NULL)');
      const { rows } = await client.query<{ version: number }>('SELECT max(version) AS version FROM schema_migrations');
      const applied = rows[0]?.version ?? 0;
      if (applied > this.migrations.length) throw new Error('the PostgreSQL schema was written by a newer gateway (schema version too high)');
      for (let i = applied; i < this.migrations.length; i++) await client.query(this.migrations[i]);
      if (applied < this.migrations.length) await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [this.migrations.length]);
    });
  }

  /** `work` inside BEGIN … COMMIT on one connection; rolled back if it throws. */
  async transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** True when a trivial query answers (readiness). */
  async isUsable(): Promise<boolean> {
    try {
      await this.pool.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
