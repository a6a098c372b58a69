import { join } from 'node:path';
import type { Provider } from '@nestjs/common';
import { GatewayConfig } from '../config/gateway-config';
import { PostgresDatabase } from '../database/postgres-database';
import { IdempotencyStore } from './idempotency.store';
import { PgIdempotencyStore } from './pg-idempotency.store';
import { RedisIdempotencyStore } from './redis-idempotency.store';
import { SqliteIdempotencyStore } from './sqlite-idempotency.store';

/**
 * Where replay keys live: in PostgreSQL when GATEWAY_DATABASE_URL is set (shared by instances and
 * as durable as the approvals, so losing Redis forgets none); else in Redis when GATEWAY_REDIS_URL
 * is set (which must then persist them); else in `replay.db` in the data dir.
 */
export const idempotencyStoreProvider: Provider = {
  provide: IdempotencyStore,
  inject: [GatewayConfig, PostgresDatabase],
  useFactory: (config: GatewayConfig, postgres: PostgresDatabase | null): IdempotencyStore => {
    if (postgres) return new PgIdempotencyStore(postgres);
    if (config.redisUrl) return new RedisIdempotencyStore(config.redisUrl);
    return new SqliteIdempotencyStore(join(config.paths.dataDir, 'replay.db'));
  },
};
