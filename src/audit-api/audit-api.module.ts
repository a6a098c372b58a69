import { Module } from '@nestjs/common';
import { AuditController } from './audit.controller';

/** The auditors' door: GET /api/audit. */
@Module({ controllers: [AuditController] })
export class AuditApiModule {}
