import { Module, Provider } from '@nestjs/common';
import { InstanceId } from '../config/instance-id';
import { PostgresDatabase } from '../database/postgres-database';
import { SqliteDatabase } from '../database/sqlite-database';
import { ExecutorModule } from '../executor/executor.module';
import { ApprovalPreviewer } from './approval-preview';
import { ApprovalWebhook } from './approval-webhook';
import { ApprovalRepository } from './approval.repository';
import { ApprovalService } from './approval.service';
import { PgApprovalRepository } from './pg-approval.repository';
import { SqliteApprovalRepository } from './sqlite-approval.repository';

/** In PostgreSQL, shared by instances, when GATEWAY_DATABASE_URL is set; else in the embedded SQLite database. */
const approvalRepositoryProvider: Provider = {
  provide: ApprovalRepository,
  inject: [PostgresDatabase, SqliteDatabase, InstanceId],
  useFactory: (postgres: PostgresDatabase | null, sqlite: SqliteDatabase, instance: InstanceId) =>
    postgres ? new PgApprovalRepository(postgres, instance.value) : new SqliteApprovalRepository(sqlite, instance.value),
};

/** Approvals' state and views; their door (POST /approve, listings) is ApprovalsApiModule. */
@Module({
  imports: [ExecutorModule],
  providers: [ApprovalService, ApprovalPreviewer, ApprovalWebhook, approvalRepositoryProvider],
  exports: [ApprovalService, ApprovalPreviewer],
})
export class ApprovalModule {}
