import { Global, Module } from '@nestjs/common';
import { AuditController } from './audit.controller';
import { AuditLog } from './audit-log.service';
import { auditStoreProvider } from './audit-store.provider';
import { RequestAudit } from './request-audit';
import { redactorProvider } from '../redaction/redactor.provider';

@Global()
@Module({
  controllers: [AuditController],
  providers: [auditStoreProvider, AuditLog, RequestAudit, redactorProvider],
  exports: [AuditLog, RequestAudit, redactorProvider],
})
export class AuditModule {}
