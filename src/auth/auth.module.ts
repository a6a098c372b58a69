import { Module } from '@nestjs/common';
import { ThrottleModule } from '../throttle/throttle.module';
import { AgentAuthenticator } from './agent-authenticator';
import { ApproverAuthenticator } from './approver-authenticator';
import { AuthGuard } from './auth.guard';
import { McpTokenAuthenticator } from './mcp-token.authenticator';
import { OAuthMetadataController } from './oauth/oauth-metadata';
import { OAuthVerifier } from './oauth/oauth-verifier';
import { Idempotency } from './idempotency.service';
import { IdempotencyStore } from './idempotency.store';
import { idempotencyStoreProvider } from './idempotency-store.provider';

@Module({
  imports: [ThrottleModule],
  controllers: [OAuthMetadataController],
  providers: [OAuthVerifier, AgentAuthenticator, ApproverAuthenticator, McpTokenAuthenticator, AuthGuard, Idempotency, idempotencyStoreProvider],
  exports: [AuthGuard, Idempotency, IdempotencyStore],
})
export class AuthModule {}
