import { Global, Module } from '@nestjs/common';
import { AuditController } from './audit.controller';
import { AuditInterceptor } from './audit.interceptor';
import { AuditLog } from './audit-log.service';
import { RequestAudit } from './request-audit';
import { redactorProvider } from './redactor.provider';

@Global()
@Module({
  controllers: [AuditController],
  providers: [AuditLog, RequestAudit, AuditInterceptor, redactorProvider],
  exports: [AuditLog, RequestAudit, AuditInterceptor, redactorProvider],
})
export class AuditModule {}
