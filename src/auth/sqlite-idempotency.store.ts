import { Logger, OnApplicationShutdown } from '@nestjs/common';
import type Database from 'better-sqlite3';
import type { Statement, Transaction } from 'better-sqlite3';
import { openSqlite } from '../database/sqlite-database';
import { Claim, claimFromEntry, IdempotencyStore, KeptAnswer, keptAnswer, MAX_KEPT_ANSWER_BYTES, standInFor } from './idempotency.store';

export const REPLAY_STORE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE replay_keys (
     key         TEXT PRIMARY KEY,
     body_hash   TEXT NOT NULL,
     state       TEXT NOT NULL,
     since       INTEGER NOT NULL,
     expires_at  INTEGER NOT NULL,
     status      INTEGER,
     replaceable INTEGER NOT NULL DEFAULT 0,
     bytes       INTEGER NOT NULL DEFAULT 0,
     body        TEXT
   );
   CREATE INDEX replay_keys_by_expiry ON replay_keys (expires_at);
   CREATE INDEX replaceable_answers_by_age ON replay_keys (since) WHERE replaceable = 1;`,
];

interface KeyRow {
  body_hash: string;
  state: 'in_progress' | 'done';
  /** Unix ms: when the key was taken (by its claim, or by an answer stored without one). */
  since: number;
  expires_at: number;
  status: number | null;
  /** 1 while `body` is a first answer larger than REPLACEABLE_OVER_BYTES: the total cap may replace it by its stand-in. */
  replaceable: number;
  /** Length of `body`, counted against the total cap. */
  bytes: number;
  body: string | null;
}

export interface ReplayStoreLimits {
  /** The largest answer kept whole, serialized; a larger one is kept as a stand-in. */
  maxAnswerBytes: number;
  /** All kept answers together; beyond it the oldest large ones give way to stand-ins. */
  maxTotalBytes: number;
}

export const DEFAULT_REPLAY_STORE_LIMITS: ReplayStoreLimits = { maxAnswerBytes: MAX_KEPT_ANSWER_BYTES, maxTotalBytes: 256 * 1024 * 1024 };

const SWEEP_INTERVAL_MS = 60_000;
const SWEEP_BATCH = 500;
const SHRINK_BATCH = 64;
/** A stand-in is smaller than this (a few fields of at most 256 characters and the note), so only larger answers are worth replacing. */
const REPLACEABLE_OVER_BYTES = 2048;

/**
 * Replay keys in their own SQLite file in the data dir, so neither a restart nor a kill -9 forgets
 * them. WAL with synchronous=NORMAL: a commit has reached the WAL file (the OS page cache) before
 * the call goes on, which a process crash cannot lose; only an OS crash or power loss can lose the
 * last commits. That is the trade for no fsync per call. One gateway process per data dir (the byte
 * total is counted in this process).
 */
export class SqliteIdempotencyStore extends IdempotencyStore implements OnApplicationShutdown {
  private readonly logger = new Logger(SqliteIdempotencyStore.name);
  private readonly db: Database.Database;
  /** Sum of `bytes` over all rows, kept here so that the total cap costs no query. */
  private storedBytes: number;
  private sweeping = false;
  private group: Array<{ work: () => unknown; resolve: (value: unknown) => void; reject: (error: unknown) => void }> = [];
  private readonly groupTx: Transaction<(run: () => void) => void>;
  private readonly sweepTimer: NodeJS.Timeout;

  private readonly selectKey: Statement<[string], KeyRow>;
  private readonly selectBytes: Statement<[string], number>;
  private readonly claimNew: Statement<[string, string, number, number]>;
  private readonly putClaim: Statement<[string, string, number, number]>;
  private readonly answerClaim: Statement<[number, number, number, string, string, string]>;
  private readonly putAnswer: Statement<[string, string, number, number, number, number, number, string]>;
  private readonly deleteKey: Statement<[string], number>;
  private readonly deleteExpired: Statement<[number, number], number>;
  private readonly oldestReplaceable: Statement<[number], { key: string; bytes: number; body: string }>;
  private readonly replaceBody: Statement<[string, number, string]>;
  private readonly selectOne: Statement<[], number>;
  private readonly claimTx: Transaction<(key: string, bodyHash: string, now: number, expiresAt: number) => Claim>;
  private readonly completeTx: Transaction<
    (key: string, bodyHash: string, status: number, answer: KeptAnswer, replaceable: number, now: number, expiresAt: number) => void
  >;
  private readonly shrinkTx: Transaction<(rows: Array<{ key: string; bytes: number; body: string }>, target: number) => number>;

  constructor(
    file: string,
    private readonly limits: ReplayStoreLimits = DEFAULT_REPLAY_STORE_LIMITS,
  ) {
    super();
    this.db = openSqlite(file, REPLAY_STORE_MIGRATIONS, 'NORMAL');
    this.selectKey = this.db.prepare('SELECT body_hash, state, since, expires_at, status, replaceable, bytes, body FROM replay_keys WHERE key = ?');
    this.selectBytes = this.db.prepare<[string], number>('SELECT bytes FROM replay_keys WHERE key = ?').pluck();
    this.claimNew = this.db.prepare(
      "INSERT INTO replay_keys (key, body_hash, state, since, expires_at) VALUES (?, ?, 'in_progress', ?, ?) ON CONFLICT (key) DO NOTHING",
    );
    this.putClaim = this.db.prepare("INSERT OR REPLACE INTO replay_keys (key, body_hash, state, since, expires_at) VALUES (?, ?, 'in_progress', ?, ?)");
    this.answerClaim = this.db.prepare(
      "UPDATE replay_keys SET state = 'done', status = ?, replaceable = ?, bytes = ?, body = ? WHERE key = ? AND body_hash = ? AND state = 'in_progress'",
    );
    this.putAnswer = this.db.prepare(
      "INSERT OR REPLACE INTO replay_keys (key, body_hash, state, since, expires_at, status, replaceable, bytes, body) VALUES (?, ?, 'done', ?, ?, ?, ?, ?, ?)",
    );
    this.deleteKey = this.db.prepare<[string], number>('DELETE FROM replay_keys WHERE key = ? RETURNING bytes').pluck();
    this.deleteExpired = this.db
      .prepare<[number, number], number>(
        'DELETE FROM replay_keys WHERE key IN (SELECT key FROM replay_keys WHERE expires_at <= ? ORDER BY expires_at LIMIT ?) RETURNING bytes',
      )
      .pluck();
    this.oldestReplaceable = this.db.prepare('SELECT key, bytes, body FROM replay_keys WHERE replaceable = 1 ORDER BY since LIMIT ?');
    this.replaceBody = this.db.prepare('UPDATE replay_keys SET body = ?, bytes = ?, replaceable = 0 WHERE key = ?');
    this.selectOne = this.db.prepare<[], number>('SELECT 1').pluck();

    this.claimTx = this.db.transaction((key, bodyHash, now, expiresAt) => {
      const row = this.selectKey.get(key);
      if (row && row.expires_at > now) return claimFromEntry(entryOf(row), bodyHash);
      this.putClaim.run(key, bodyHash, now, expiresAt);
      this.storedBytes -= row?.bytes ?? 0;
      return { kind: 'claimed' };
    });
    this.completeTx = this.db.transaction((key, bodyHash, status, answer, replaceable, now, expiresAt) => {
      const previous = this.selectBytes.get(key) ?? 0;
      this.putAnswer.run(key, bodyHash, now, expiresAt, status, replaceable, answer.bytes, answer.json);
      this.storedBytes += answer.bytes - previous;
    });
    this.groupTx = this.db.transaction((run) => run());
    this.shrinkTx = this.db.transaction((rows, target) => {
      let freed = 0;
      for (const row of rows) {
        if (this.storedBytes - freed <= target) break;
        const standIn = standInFor(JSON.parse(row.body), row.body, row.bytes);
        this.replaceBody.run(standIn.json, standIn.bytes, row.key);
        freed += row.bytes - standIn.bytes;
      }
      return freed;
    });

    this.storedBytes = this.db.prepare<[], number>('SELECT COALESCE(SUM(bytes), 0) FROM replay_keys').pluck().get()!;
    this.shrinkAnswers();
    this.sweepTimer = setInterval(() => void this.sweepExpired(), SWEEP_INTERVAL_MS).unref();
    void this.sweepExpired();
  }

  // The common cases (a new key; the answer to our own claim) take one statement each; anything
  // else (a replay, a conflict, an expired or missing key) a nested transaction. All of them join
  // the current group commit.
  claim(key: string, bodyHash: string, ttlMs: number): Promise<Claim> {
    return this.inGroupCommit(() => {
      const now = Date.now();
      if (this.claimNew.run(key, bodyHash, now, now + ttlMs).changes === 1) return { kind: 'claimed' };
      return this.claimTx(key, bodyHash, now, now + ttlMs);
    });
  }

  /**
   * An answer to a claim keeps the claim's expiry (ttlMs from the claim, not from now: shorter by
   * the call's duration), which spares rewriting the expiry index on every call.
   */
  async complete(key: string, bodyHash: string, status: number, body: unknown, ttlMs: number): Promise<void> {
    const answer = keptAnswer(body, this.limits.maxAnswerBytes);
    const replaceable = answer.whole && answer.bytes > REPLACEABLE_OVER_BYTES ? 1 : 0;
    await this.inGroupCommit(() => {
      if (this.answerClaim.run(status, replaceable, answer.bytes, answer.json, key, bodyHash).changes === 1) {
        this.storedBytes += answer.bytes;
      } else {
        const now = Date.now();
        this.completeTx(key, bodyHash, status, answer, replaceable, now, now + ttlMs);
      }
    });
    if (this.storedBytes > this.limits.maxTotalBytes) this.shrinkAnswers();
  }

  /**
   * Group commit: the claims and answers of one event-loop turn are written in one transaction (one
   * WAL commit instead of one each), and each resolves only after that commit, so nothing is ever
   * acknowledged that a crash could take back. Within the transaction they run in arrival order,
   * so two claims of one key in one turn still see each other.
   */
  private inGroupCommit<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.group.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (this.group.length === 1) setImmediate(() => this.commitGroup());
    });
  }

  private commitGroup(): void {
    const group = this.group;
    this.group = [];
    const outcomes: Array<{ value?: unknown; error?: unknown }> = [];
    try {
      this.groupTx(() => {
        for (const { work } of group) {
          try {
            outcomes.push({ value: work() });
          } catch (error) {
            outcomes.push({ error });
          }
        }
      });
    } catch (error) {
      group.forEach((item) => item.reject(error));
      return;
    }
    group.forEach((item, i) => ('error' in outcomes[i] ? item.reject(outcomes[i].error) : item.resolve(outcomes[i].value)));
  }

  async release(key: string): Promise<void> {
    this.storedBytes -= this.deleteKey.get(key) ?? 0;
  }

  async ping(): Promise<void> {
    this.selectOne.get();
  }

  /** The bytes of all kept answers (what the total cap bounds). */
  get keptBytes(): number {
    return this.storedBytes;
  }

  /**
   * Deletes expired keys, a batch per statement, yielding between batches so that a large backlog
   * never holds the event loop. Runs at start and every minute; a claim never depends on it (an
   * expired row is taken over). Returns how many were deleted.
   */
  async sweepExpired(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    let deleted = 0;
    try {
      while (this.db.open) {
        const freed = this.deleteExpired.all(Date.now(), SWEEP_BATCH);
        deleted += freed.length;
        this.storedBytes -= freed.reduce((sum, bytes) => sum + bytes, 0);
        if (freed.length < SWEEP_BATCH) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      this.logger.warn({ err_code: (err as { code?: string }).code }, 'could not delete expired replay keys; will try again');
    } finally {
      this.sweeping = false;
    }
    return deleted;
  }

  /**
   * Over the total cap, the oldest large answers give way to stand-ins (their keys stay until their
   * TTL). Down to 90% of the cap, so that this runs once per batch of calls, not on every one.
   */
  private shrinkAnswers(): void {
    const target = this.limits.maxTotalBytes * 0.9;
    while (this.storedBytes > target) {
      const oldest = this.oldestReplaceable.all(SHRINK_BATCH);
      if (oldest.length === 0) return; // only small answers and stand-ins are left, bounded by the number of keys
      this.storedBytes -= this.shrinkTx.immediate(oldest, target);
    }
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweepTimer);
    if (this.db.open) this.db.close();
  }
}

function entryOf(row: KeyRow) {
  return {
    state: row.state,
    bodyHash: row.body_hash,
    since: row.since,
    status: row.status ?? undefined,
    body: row.body === null ? undefined : JSON.parse(row.body),
  };
}
