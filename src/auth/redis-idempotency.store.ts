import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { REDIS_CLIENT_OPTIONS } from '../throttle/redis-options';
import { Claim, claimFromEntry, IdempotencyEntry, IdempotencyStore, keptAnswer } from './idempotency.store';

const PREFIX = 'agw:idem:';

/**
 * Idempotency keys in Redis: a claim is one `SET … NX PX`, so two instances cannot both take it.
 * Each answer is bounded by keptAnswer; the total is Redis's `maxmemory`, which must come with
 * `maxmemory-policy noeviction` (an evicted key would let its call run again; a full Redis refuses
 * new claims instead, and the gateway answers 503).
 */
@Injectable()
export class RedisIdempotencyStore extends IdempotencyStore implements OnApplicationShutdown {
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

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  onApplicationShutdown(): void {
    this.redis.disconnect(false);
  }
}
