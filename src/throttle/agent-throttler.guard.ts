import { ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { ThrottlerGuard, ThrottlerLimitDetail, ThrottlerRequest } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { GatewayError } from '../common/errors';
import { contextOf } from '../common/request-context';
import { GatewayMetrics } from '../health/gateway-metrics';

export class RateLimited extends GatewayError {
  constructor(message: string) {
    super(429, 'rate_limited', 'rate_limited', message);
  }
}

export class LimitsUnavailable extends GatewayError {
  constructor() {
    super(503, 'rate_limit_unavailable', 'rate_limit_store_unavailable', 'The rate-limit store cannot be reached; the call was refused');
  }
}

/** 429 with `Retry-After` in whole seconds, so a client can simply wait that long. */
export function refuseWithRetryAfter(res: Response, seconds: number, message: string): never {
  res.setHeader('Retry-After', String(Math.max(1, Math.ceil(seconds))));
  throw new RateLimited(message);
}

/**
 * API.md §4 row 6 and §8: per-agent limits (agent, else role) and per-tool limits per agent,
 * keyed by the verified agent id, never by IP or route. A store failure refuses the call.
 */
@Injectable()
export class AgentThrottlerGuard extends ThrottlerGuard {
  @Inject(GatewayMetrics) private readonly metrics!: GatewayMetrics;

  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    return contextOf(context.switchToHttp().getRequest<Request>()).agent === undefined;
  }

  protected override async handleRequest(request: ThrottlerRequest): Promise<boolean> {
    try {
      return await super.handleRequest(request);
    } catch (err) {
      throw err instanceof GatewayError ? err : new LimitsUnavailable();
    }
  }

  protected override async throwThrottlingException(context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    const perTool = detail.key.startsWith('tool/');
    this.metrics.refused(perTool ? 'tool' : 'agent');
    const scope = perTool ? 'for this tool' : 'for this agent';
    refuseWithRetryAfter(
      context.switchToHttp().getResponse<Response>(),
      detail.timeToBlockExpire,
      `Rate limit exceeded ${scope}: ${detail.limit} calls per ${detail.ttl / 1000} s`,
    );
  }
}
