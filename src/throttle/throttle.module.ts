import { Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { GatewayConfig } from '../config/gateway-config';
import { AgentLimiter } from './agent-limiter';
import { AuthFailureLimiter } from './auth-failure-limiter';
import { MemoryThrottlerStorage } from './memory-throttler.storage';
import { REDIS_CLIENT_OPTIONS } from './redis-options';

/** The throttler's counter storage, and the two limits the doors spend (per agent, per failing address). */
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [GatewayConfig],
      useFactory: (config: GatewayConfig) => ({
        throttlers: [],
        // In memory by default; with GATEWAY_REDIS_URL, shared by every instance.
        storage: config.redisUrl ? new ThrottlerStorageRedisService(config.redisUrl, REDIS_CLIENT_OPTIONS) : new MemoryThrottlerStorage(),
      }),
    }),
  ],
  providers: [AgentLimiter, AuthFailureLimiter],
  exports: [AgentLimiter, AuthFailureLimiter],
})
export class ThrottleModule {}
