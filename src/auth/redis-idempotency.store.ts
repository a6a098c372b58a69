import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { REDIS_CLIENT_OPTIONS } from '../throttle/redis-options';
import { Claim, claimFromEntry, IdempotencyEntry, IdempotencyStore } from './idempotency.store';

const PREFIX = 'agw:idem:';

/** Idempotency keys in Redis: a claim is one `SET … NX PX`, so two instances cannot both take it. */
@Injectable()
export class RedisIdempotencyStore extends IdempotencyStore implements OnApplicationShutdown {
  private readonly redis: Redis;

  constructor(url: string) {
    super();
    this.redis = new Redis(url, REDIS_CLIENT_OPTIONS);
  }

  async claim(key: string, bodyHash: string, ttlMs: number): Promise<Claim> {
    const entry: IdempotencyEntry = { state: 'in_progress', bodyHash };
    // Two tries: the holder's entry may expire between our SET NX and our GET.
    for (let attempt = 0; attempt < 2; attempt++) {
      if ((await this.redis.set(PREFIX + key, JSON.stringify(entry), 'PX', ttlMs, 'NX')) === 'OK') return { kind: 'claimed' };
      const current = await this.redis.get(PREFIX + key);
      if (current !== null) return claimFromEntry(JSON.parse(current) as IdempotencyEntry, bodyHash);
    }
    return { kind: 'in_progress' };
  }

  async complete(key: string, bodyHash: string, status: number, body: unknown, ttlMs: number): Promise<void> {
    const entry: IdempotencyEntry = { state: 'done', bodyHash, status, body };
    await this.redis.set(PREFIX + key, JSON.stringify(entry), 'PX', ttlMs);
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
