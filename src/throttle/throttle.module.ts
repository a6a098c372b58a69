import { Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import type { Request } from 'express';
import { contextOf } from '../common/request-context';
import { GatewayConfig } from '../config/gateway-config';
import { agentLimit, toolLimit } from './agent-limits';
import { AgentThrottlerGuard } from './agent-throttler.guard';
import { AuthFailureLimiter } from './auth-failure-limiter';
import { MemoryThrottlerStorage } from './memory-throttler.storage';
import { REDIS_CLIENT_OPTIONS } from './redis-options';

@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [GatewayConfig],
      useFactory: (config: GatewayConfig) => ({
        throttlers: [
          {
            name: 'default',
            limit: (ctx) => agentLimit(config, ctx)?.limit ?? 0,
            ttl: (ctx) => (agentLimit(config, ctx)?.ttl_s ?? 1) * 1000,
            skipIf: (ctx) => agentLimit(config, ctx) === undefined,
          },
          {
            name: 'tool',
            limit: (ctx) => toolLimit(config, ctx)?.limit ?? 0,
            ttl: (ctx) => (toolLimit(config, ctx)?.ttl_s ?? 1) * 1000,
            skipIf: (ctx) => toolLimit(config, ctx) === undefined,
          },
        ],
        getTracker: (req) => contextOf(req as Request).agent!.id,
        generateKey: (ctx, agentId, name) => (name === 'tool' ? `tool/${agentId}/${contextOf(ctx.switchToHttp().getRequest<Request>()).envelope!.tool}` : `agent/${agentId}`),
        // In memory by default; with GATEWAY_REDIS_URL, shared by every instance.
        storage: config.redisUrl ? new ThrottlerStorageRedisService(config.redisUrl, REDIS_CLIENT_OPTIONS) : new MemoryThrottlerStorage(),
      }),
    }),
  ],
  providers: [AgentThrottlerGuard, AuthFailureLimiter],
  exports: [AgentThrottlerGuard, AuthFailureLimiter],
})
export class ThrottleModule {}
