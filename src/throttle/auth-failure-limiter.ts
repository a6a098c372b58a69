import { Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, ThrottlerStorage } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../health/gateway-metrics';
import { LimitsUnavailable, refuseWithRetryAfter } from './agent-throttler.guard';

/**
 * API.md §4 row 2: the per-IP limit before identity is known. It counts failed authentications
 * only, so agents with valid signatures behind one address are never limited by it, while a
 * client guessing keys is cut off with 429 after `unauthenticated_rate_limit.limit` failures.
 */
@Injectable()
export class AuthFailureLimiter {
  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    private readonly config: GatewayConfig,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** Counts one failed authentication from this client; throws 429 once its budget is spent. */
  async recordFailure(req: Request, res: Response): Promise<void> {
    const { limit, ttl_s } = this.config.settings.unauthenticated_rate_limit;
    let result;
    try {
      result = await this.storage.increment(`ip/${req.ip}`, ttl_s * 1000, limit, ttl_s * 1000, 'unauthenticated');
    } catch {
      throw new LimitsUnavailable();
    }
    if (!result.isBlocked) return;
    this.metrics.refused('address');
    refuseWithRetryAfter(res, result.timeToBlockExpire, 'Too many failed authentications from this address');
  }
}
