import { Logger, OnApplicationShutdown } from '@nestjs/common';
import { DatabaseError, Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { GatewayError } from '../core/errors';
import { PG_MIGRATIONS } from './pg-migrations';

// Any 64-bit number that is this gateway's own: the lock migrations run under.
const MIGRATION_LOCK = 7_314_250_001;
// No statement of the gateway's takes this long unless the server is stuck; the caller gets 503.
const STATEMENT_TIMEOUT_MS = 15_000;

/** 503: PostgreSQL (GATEWAY_DATABASE_URL) cannot be reached; whatever needed it did not happen. */
export class DatabaseUnavailable extends GatewayError {
  /** What pg reported (for the operator's log, never the answer). */
  override readonly cause: unknown;

  constructor(cause?: unknown) {
    super(503, 'database_unavailable', 'database_unavailable', 'The database (PostgreSQL) cannot be reached; nothing was done');
    this.cause = cause;
  }
}

/**
 * True for a failure of the connection rather than of the statement: refused, reset, timed out,
 * or a server that is shutting down, starting, out of connections or out of resources.
 */
export function isConnectionFailure(err: unknown): boolean {
  if (err instanceof DatabaseError) return /^(08|53|57|58)/.test(err.code ?? '');
  // Read as plain fields: a socket error may come from another realm (not `instanceof Error` here).
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  return (typeof code === 'string' && CONNECTION_ERRNO.test(code)) || (typeof message === 'string' && CONNECTION_MESSAGE.test(message));
}
const CONNECTION_ERRNO = /^E(CONNREFUSED|CONNRESET|TIMEDOUT|PIPE|NOTFOUND|HOSTUNREACH|NETUNREACH|ADDRNOTAVAIL|AI_AGAIN)$/;
// What pg itself says when the connection (not the statement) failed, or the pool is closing.
const CONNECTION_MESSAGE =
  /^(Connection terminated|timeout expired|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Cannot use a pool after calling end|Client was closed)/;

function unavailableOr(err: unknown): unknown {
  return isConnectionFailure(err) ? new DatabaseUnavailable(err) : err;
}

/**
 * The shared PostgreSQL database (GATEWAY_DATABASE_URL): one pool per instance, migrated at start.
 * Queries that cannot reach the server fail at once (no queueing behind a dead connection), so a
 * request is refused (503 DatabaseUnavailable) rather than left hanging; the pool reconnects by itself.
 */
export class PostgresDatabase implements OnApplicationShutdown {
  private readonly logger = new Logger(PostgresDatabase.name);
  readonly pool: Pool;

  constructor(
    url: string,
    private readonly migrations: readonly string[] = PG_MIGRATIONS,
  ) {
    this.pool = new Pool({
      connectionString: url,
      max: 10,
      connectionTimeoutMillis: 2000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      statement_timeout: STATEMENT_TIMEOUT_MS,
    });
    // An idle client that loses its server emits 'error' on the pool: log it, the next query reconnects.
    this.pool.on('error', (err) =>
      this.logger.warn(`PostgreSQL connection lost (${(err as NodeJS.ErrnoException).code ?? err.name}); reconnecting on next use`),
    );
  }

  /** Applies the migrations this database has not seen, under an advisory lock. */
  async migrate(): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('SET LOCAL statement_timeout = 0');
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer NOT NULL)');
      const { rows } = await client.query<{ version: number }>('SELECT max(version) AS version FROM schema_migrations');
      const applied = rows[0]?.version ?? 0;
      if (applied > this.migrations.length) throw new Error('the PostgreSQL schema was written by a newer gateway (schema version too high)');
      for (let i = applied; i < this.migrations.length; i++) await client.query(this.migrations[i]);
      if (applied < this.migrations.length) await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [this.migrations.length]);
    });
  }

  /** One statement on any pooled connection; a lost connection throws DatabaseUnavailable. */
  async query<R extends QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw unavailableOr(err);
    }
  }

  /** `work` inside BEGIN … COMMIT on one connection; rolled back if it throws. A lost connection throws DatabaseUnavailable. */
  async transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw unavailableOr(err);
    }
    // A connection lost mid-transaction is also emitted as 'error' on the checked-out client; with no
    // listener that event would crash the process. The failed query rejects on its own.
    const ignore = () => undefined;
    client.on('error', ignore);
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      broken = isConnectionFailure(err);
      await client.query('ROLLBACK').catch(() => undefined);
      throw unavailableOr(err);
    } finally {
      client.removeListener('error', ignore);
      // A connection that failed mid-transaction is dropped, not handed to the next caller.
      client.release(broken);
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
    if (!this.pool.ended) await this.pool.end();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}
