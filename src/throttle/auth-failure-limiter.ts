import { Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, ThrottlerStorage } from '@nestjs/throttler';
import { LimitsUnavailable, RateLimited } from '../core/errors';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics';

const MAX_REMEMBERED_BLOCKS = 100_000;

/**
 * settings.unauthenticated_rate_limit: the per-IP limit before identity is known, for every door. It counts failed
 * authentications only; once an address has spent its budget, every request from it gets 429
 * until the block ends, valid credentials or not, so a guess that happens to be right is refused too.
 */
@Injectable()
export class AuthFailureLimiter {
  /**
   * Addresses this instance has seen blocked, and until when (ms): the storage can only count, so
   * this is what is checked before authentication. Another instance learns a block at its own first
   * failure from that address. Bounded: past 100,000 the oldest is forgotten.
   */
  private readonly blockedUntil = new Map<string, number>();

  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    private readonly config: GatewayConfig,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** Before authentication: throws 429 while `clientIp` is blocked. */
  refuseIfBlocked(clientIp: string | undefined): void {
    const address = String(clientIp);
    const until = this.blockedUntil.get(address);
    if (until === undefined) return;
    const left = until - Date.now();
    if (left <= 0) {
      this.blockedUntil.delete(address);
      return;
    }
    throw this.refused(left / 1000);
  }

  /** Counts one failed authentication from `clientIp`; throws 429 once its budget is spent. */
  async recordFailure(clientIp: string | undefined): Promise<void> {
    const { limit, ttl_s } = this.config.settings.unauthenticated_rate_limit;
    let result;
    try {
      result = await this.storage.increment(`ip/${clientIp}`, ttl_s * 1000, limit, ttl_s * 1000, 'unauthenticated');
    } catch {
      throw new LimitsUnavailable();
    }
    if (!result.isBlocked) return;
    this.remember(String(clientIp), Date.now() + result.timeToBlockExpire * 1000);
    throw this.refused(result.timeToBlockExpire);
  }

  private remember(address: string, until: number): void {
    this.blockedUntil.delete(address);
    if (this.blockedUntil.size >= MAX_REMEMBERED_BLOCKS) this.blockedUntil.delete(this.blockedUntil.keys().next().value!);
    this.blockedUntil.set(address, until);
  }

  private refused(retryAfterS: number): RateLimited {
    this.metrics.refused('address');
    return new RateLimited('Too many failed authentications from this address', retryAfterS);
  }
}
