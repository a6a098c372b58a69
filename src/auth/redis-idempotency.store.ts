import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { REDIS_CLIENT_OPTIONS } from '../throttle/redis-options';
import { Claim, claimFromEntry, IdempotencyEntry, IdempotencyStore, keptAnswer } from './idempotency.store';

const PREFIX = 'agw:idem:';

/**
 * Idempotency keys in Redis (when there is no PostgreSQL): a claim is one `SET … NX PX`, so two
 * instances cannot both take it. Redis must persist them (appendonly), or a restart forgets them.
 * Each answer is bounded by keptAnswer; the total is Redis's `maxmemory`, which must come with
 * `maxmemory-policy noeviction` (an evicted key would let its call run again; a full Redis refuses
 * new claims instead, and the gateway answers 503).
 */
@Injectable()
export class RedisIdempotencyStore extends IdempotencyStore implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RedisIdempotencyStore.name);
  private readonly redis: Redis;

  constructor(url: string) {
    super();
    this.redis = new Redis(url, REDIS_CLIENT_OPTIONS);
  }

  async claim(key: string, bodyHash: string, ttlMs: number): Promise<Claim> {
    const entry: IdempotencyEntry = { state: 'in_progress', bodyHash, since: Date.now() };
    // Two tries: the holder's entry may expire between our SET NX and our GET.
    for (let attempt = 0; attempt < 2; attempt++) {
      if ((await this.redis.set(PREFIX + key, JSON.stringify(entry), 'PX', ttlMs, 'NX')) === 'OK') return { kind: 'claimed' };
      const current = await this.redis.get(PREFIX + key);
      if (current !== null) return claimFromEntry(JSON.parse(current) as IdempotencyEntry, bodyHash);
    }
    return { kind: 'in_progress', since: entry.since! };
  }

  async complete(key: string, bodyHash: string, status: number, body: unknown, ttlMs: number): Promise<void> {
    // The answer is serialized already (to bound it); spliced in rather than serialized twice.
    const head = JSON.stringify({ state: 'done', bodyHash, status } satisfies IdempotencyEntry);
    await this.redis.set(PREFIX + key, `${head.slice(0, -1)},"body":${keptAnswer(body).json}}`, 'PX', ttlMs);
  }

  async release(key: string): Promise<void> {
    await this.redis.del(PREFIX + key);
  }

  /** Replay keys must outlive a Redis restart: says so at start unless Redis keeps an append-only file. */
  async onApplicationBootstrap(): Promise<void> {
    const persistence = await this.redis.info('persistence').catch(() => '');
    if (/^aof_enabled:1\r?$/m.test(persistence)) return;
    this.logger.warn(
      'Replay keys are in Redis (GATEWAY_REDIS_URL without GATEWAY_DATABASE_URL), and Redis keeps no append-only file (appendonly yes): a Redis restart forgets them, and a signed request sent again within idempotency_ttl_s would run again (an approval is still never filed twice). Turn on appendonly, or set GATEWAY_DATABASE_URL to keep replay keys in PostgreSQL.',
    );
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  onApplicationShutdown(): void {
    this.redis.disconnect(false);
  }
}
