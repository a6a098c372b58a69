import { Module } from '@nestjs/common';
import { AgentAuthenticator } from './agent-authenticator';
import { ApproverAuthenticator } from './approver-authenticator';
import { AuthGuard } from './auth.guard';

@Module({ providers: [AgentAuthenticator, ApproverAuthenticator, AuthGuard], exports: [AuthGuard] })
export class AuthModule {}
