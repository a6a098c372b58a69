import { Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, ThrottlerStorage } from '@nestjs/throttler';
import { LimitsUnavailable, RateLimited } from '../common/errors';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../health/gateway-metrics';

/**
 * API.md §4 row 2: the per-IP limit before identity is known, for every door. It counts failed
 * authentications only, so agents with valid credentials behind one address are never limited by
 * it, while a client guessing keys or tokens is cut off with 429 after `limit` failures.
 */
@Injectable()
export class AuthFailureLimiter {
  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    private readonly config: GatewayConfig,
    private readonly metrics: GatewayMetrics,
  ) {}

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
    this.metrics.refused('address');
    throw new RateLimited('Too many failed authentications from this address', result.timeToBlockExpire);
  }
}
