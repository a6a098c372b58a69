import { Global, Module } from '@nestjs/common';
import { AuditLog } from './audit-log.service';
import { auditStoreProvider } from './audit-store.provider';
import { RequestAudit } from './request-audit';
import { redactorProvider } from '../redaction/redactor.provider';

@Global()
@Module({
  providers: [auditStoreProvider, AuditLog, RequestAudit, redactorProvider],
  exports: [AuditLog, RequestAudit, redactorProvider],
})
export class AuditModule {}
