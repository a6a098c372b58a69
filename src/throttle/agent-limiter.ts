import { Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, ThrottlerStorage } from '@nestjs/throttler';
import { LimitsUnavailable, RateLimited } from '../core/errors';
import { Agent, GatewayConfig, RateLimit } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics';

/**
 * The per-agent rate limit: the agent's limit (its own, else its role's), then the called tool's
 * limit per agent, keyed by the verified agent id, never by address or door: a REST call and an
 * MCP call spend the same counters. A store failure refuses the call.
 */
@Injectable()
export class AgentLimiter {
  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    private readonly config: GatewayConfig,
    private readonly metrics: GatewayMetrics,
  ) {}

  async spend(agent: Agent, toolName: string): Promise<void> {
    const own = agentLimit(this.config, agent);
    if (own) await this.take(`agent/${agent.id}`, own, 'agent');
    const perTool = this.config.tools.get(toolName)?.rate_limit;
    if (perTool) await this.take(`tool/${agent.id}/${toolName}`, perTool, 'tool');
  }

  private async take(key: string, { limit, ttl_s }: RateLimit, scope: 'agent' | 'tool'): Promise<void> {
    let result;
    try {
      result = await this.storage.increment(key, ttl_s * 1000, limit, ttl_s * 1000, scope);
    } catch {
      throw new LimitsUnavailable();
    }
    if (!result.isBlocked) return;
    this.metrics.refused(scope);
    throw new RateLimited(`Rate limit exceeded for this ${scope}: ${limit} calls per ${ttl_s} s`, result.timeToBlockExpire);
  }
}

export function agentLimit(config: GatewayConfig, agent: Agent): RateLimit | undefined {
  return agent.rate_limit ?? config.roles[agent.role]?.rate_limit;
}
