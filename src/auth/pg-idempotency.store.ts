import { Logger, OnApplicationShutdown } from '@nestjs/common';
import { PostgresDatabase } from '../database/postgres-database';
import { Claim, claimFromEntry, IdempotencyEntry, IdempotencyStore, keptAnswer } from './idempotency.store';

interface KeyRow {
  body_hash: string;
  state: 'in_progress' | 'done';
  since: string;
  status: number | null;
  body: string | null;
}

const SWEEP_INTERVAL_MS = 60_000;
const SWEEP_BATCH = 1000;

/**
 * Replay keys in PostgreSQL (GATEWAY_DATABASE_URL), shared by every instance and as durable as the
 * approvals: a claim is committed before the call goes on, so neither a restart of an instance nor
 * the loss of Redis lets a call run twice. A claim is one INSERT … ON CONFLICT, so two instances
 * cannot both take a key; an expired key is taken over in the same statement. Each answer is
 * bounded by keptAnswer; expired keys are deleted every minute.
 */
export class PgIdempotencyStore extends IdempotencyStore implements OnApplicationShutdown {
  private readonly logger = new Logger(PgIdempotencyStore.name);
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(private readonly database: PostgresDatabase) {
    super();
    this.sweepTimer = setInterval(() => void this.sweepExpired(), SWEEP_INTERVAL_MS).unref();
  }

  async claim(key: string, bodyHash: string, ttlMs: number): Promise<Claim> {
    const now = Date.now();
    // Two tries: the holder may release the key between our INSERT and our SELECT.
    for (let attempt = 0; attempt < 2; attempt++) {
      const taken = await this.database.query(
        `INSERT INTO replay_keys (key, body_hash, state, since, expires_at) VALUES ($1, $2, 'in_progress', $3::bigint, $4::bigint)
         ON CONFLICT (key) DO UPDATE SET body_hash = EXCLUDED.body_hash, state = 'in_progress', since = EXCLUDED.since,
           expires_at = EXCLUDED.expires_at, status = NULL, body = NULL
         WHERE replay_keys.expires_at <= EXCLUDED.since
         RETURNING 1`,
        [key, bodyHash, now, now + ttlMs],
      );
      if (taken.rowCount === 1) return { kind: 'claimed' };
      const { rows } = await this.database.query<KeyRow>('SELECT body_hash, state, since, status, body FROM replay_keys WHERE key = $1', [key]);
      if (rows[0]) return claimFromEntry(entryOf(rows[0]), bodyHash);
    }
    return { kind: 'in_progress', since: now };
  }

  /** Keeps the claim's expiry (ttlMs counted from the claim); an answer with no claim row gets a new one. */
  async complete(key: string, bodyHash: string, status: number, body: unknown, ttlMs: number): Promise<void> {
    const now = Date.now();
    await this.database.query(
      `INSERT INTO replay_keys (key, body_hash, state, since, expires_at, status, body) VALUES ($1, $2, 'done', $3::bigint, $4::bigint, $5, $6)
       ON CONFLICT (key) DO UPDATE SET body_hash = EXCLUDED.body_hash, state = 'done', status = EXCLUDED.status, body = EXCLUDED.body`,
      [key, bodyHash, now, now + ttlMs, status, keptAnswer(body).json],
    );
  }

  async release(key: string): Promise<void> {
    await this.database.query('DELETE FROM replay_keys WHERE key = $1', [key]);
  }

  async ping(): Promise<void> {
    await this.database.query('SELECT 1 FROM replay_keys LIMIT 1');
  }

  /** Deletes expired keys a batch at a time; a claim never depends on it (an expired key is taken over). Returns how many. */
  async sweepExpired(): Promise<number> {
    let deleted = 0;
    try {
      for (;;) {
        const { rowCount } = await this.database.query(
          'DELETE FROM replay_keys WHERE key IN (SELECT key FROM replay_keys WHERE expires_at <= $1::bigint ORDER BY expires_at LIMIT $2)',
          [Date.now(), SWEEP_BATCH],
        );
        deleted += rowCount ?? 0;
        if ((rowCount ?? 0) < SWEEP_BATCH) return deleted;
      }
    } catch (err) {
      this.logger.warn({ err_name: (err as Error).name, err_code: (err as { code?: string }).code }, 'could not delete expired replay keys; will try again');
      return deleted;
    }
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweepTimer);
  }
}

function entryOf(row: KeyRow): IdempotencyEntry {
  return {
    state: row.state,
    bodyHash: row.body_hash,
    since: Number(row.since),
    status: row.status ?? undefined,
    body: row.body === null ? undefined : JSON.parse(row.body),
  };
}
