import { join } from 'node:path';
import { Module } from '@nestjs/common';
import { GatewayConfig } from '../config/gateway-config';
import { ThrottleModule } from '../throttle/throttle.module';
import { AgentAuthenticator } from './agent-authenticator';
import { ApproverAuthenticator } from './approver-authenticator';
import { AuthGuard } from './auth.guard';
import { McpTokenAuthenticator } from './mcp-token.authenticator';
import { Idempotency } from './idempotency.service';
import { IdempotencyStore } from './idempotency.store';
import { RedisIdempotencyStore } from './redis-idempotency.store';
import { SqliteIdempotencyStore } from './sqlite-idempotency.store';

@Module({
  imports: [ThrottleModule],
  providers: [
    AgentAuthenticator,
    ApproverAuthenticator,
    McpTokenAuthenticator,
    AuthGuard,
    Idempotency,
    {
      provide: IdempotencyStore,
      inject: [GatewayConfig],
      useFactory: (config: GatewayConfig) =>
        config.redisUrl ? new RedisIdempotencyStore(config.redisUrl) : new SqliteIdempotencyStore(join(config.paths.dataDir, 'replay.db')),
    },
  ],
  exports: [AuthGuard, Idempotency, IdempotencyStore],
})
export class AuthModule {}
