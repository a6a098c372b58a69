import { Global, Module } from '@nestjs/common';
import { AuditLog } from './audit-log.service';
import { AuditStore } from './audit-store';
import { auditStoreProvider } from './audit-store.provider';
import { RequestAudit } from './request-audit';
import { redactorProvider } from '../redaction/redactor.provider';

@Global()
@Module({
  providers: [auditStoreProvider, AuditLog, RequestAudit, redactorProvider],
  // AuditStore: the audit export (src/audit-export) tails the committed chain through it.
  exports: [AuditLog, RequestAudit, redactorProvider, AuditStore],
})
export class AuditModule {}
