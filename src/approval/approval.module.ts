import { Module } from '@nestjs/common';
import { ExecutorModule } from '../executor/executor.module';
import { PolicyModule } from '../policy/policy.module';
import { ApprovalController } from './approval.controller';
import { ApprovalRepository } from './approval.repository';
import { ApprovalService } from './approval.service';
import { SqliteApprovalRepository } from './sqlite-approval.repository';

@Module({
  imports: [PolicyModule, ExecutorModule],
  controllers: [ApprovalController],
  providers: [ApprovalService, { provide: ApprovalRepository, useClass: SqliteApprovalRepository }],
  exports: [ApprovalService],
})
export class ApprovalModule {}
