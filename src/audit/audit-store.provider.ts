import { Provider } from '@nestjs/common';
import { GatewayConfig } from '../config/gateway-config';
import { InstanceId } from '../config/instance-id';
import { PostgresDatabase } from '../database/postgres-database';
import { AuditStore } from './audit-store';
import { FileAuditStore } from './file-audit-store';
import { PostgresAuditStore } from './postgres-audit-store';

/** PostgreSQL when GATEWAY_DATABASE_URL is set (one chain per instance), else the JSONL file. */
export const auditStoreProvider: Provider = {
  provide: AuditStore,
  inject: [GatewayConfig, InstanceId, PostgresDatabase],
  useFactory: (config: GatewayConfig, instance: InstanceId, database: PostgresDatabase | null): AuditStore =>
    database ? new PostgresAuditStore(database, instance.value) : new FileAuditStore(config),
};
