import type { ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { contextOf } from '../common/request-context';
import type { GatewayConfig, RateLimit } from '../config/gateway-config';

/** API.md §8: the agent's own limit, else its role's. Undefined: not limited. */
export function agentLimit(config: GatewayConfig, context: ExecutionContext): RateLimit | undefined {
  const agent = contextOf(context.switchToHttp().getRequest<Request>()).agent;
  if (!agent) return undefined;
  return agent.rate_limit ?? config.roles[agent.role]?.rate_limit;
}

/** The called tool's per-agent limit, when the call names a registered tool that has one. */
export function toolLimit(config: GatewayConfig, context: ExecutionContext): RateLimit | undefined {
  const tool = contextOf(context.switchToHttp().getRequest<Request>()).envelope?.tool;
  return tool === undefined ? undefined : config.tools.get(tool)?.rate_limit;
}
