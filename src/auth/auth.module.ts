import { Module } from '@nestjs/common';
import { GatewayConfig } from '../config/gateway-config';
import { ThrottleModule } from '../throttle/throttle.module';
import { AgentAuthenticator } from './agent-authenticator';
import { ApproverAuthenticator } from './approver-authenticator';
import { AuthGuard } from './auth.guard';
import { Idempotency } from './idempotency.service';
import { IdempotencyStore, MemoryIdempotencyStore } from './idempotency.store';
import { RedisIdempotencyStore } from './redis-idempotency.store';
import { ReplayGuard } from './replay.guard';

@Module({
  imports: [ThrottleModule],
  providers: [
    AgentAuthenticator,
    ApproverAuthenticator,
    AuthGuard,
    ReplayGuard,
    Idempotency,
    {
      provide: IdempotencyStore,
      inject: [GatewayConfig],
      useFactory: (config: GatewayConfig) => (config.redisUrl ? new RedisIdempotencyStore(config.redisUrl) : new MemoryIdempotencyStore()),
    },
  ],
  exports: [AuthGuard, ReplayGuard, Idempotency, IdempotencyStore],
})
export class AuthModule {}
