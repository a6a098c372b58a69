import { Module } from '@nestjs/common';
import { AgentSignatureGuard } from './signature.guard';

@Module({ providers: [AgentSignatureGuard], exports: [AgentSignatureGuard] })
export class AuthModule {}
