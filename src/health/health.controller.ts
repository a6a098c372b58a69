import { access, constants } from 'node:fs/promises';
import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { InjectThrottlerStorage, ThrottlerStorage } from '@nestjs/throttler';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { AuditLog } from '../audit/audit-log.service';
import { Public } from '../context/route.decorators';
import { IdempotencyStore } from '../auth/idempotency.store';
import { ErrorResponseDto } from '../core/dto';
import { GatewayError } from '../core/errors';
import { GatewayConfig } from '../config/gateway-config';
import { PolicyEngine } from '../policy/policy-engine';
import { PostgresDatabase } from '../database/postgres-database';
import { SqliteDatabase } from '../database/sqlite-database';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { ConfigReloader } from './config-reloader';

/** One store /readyz looks at: usable, or down with the reason_code that names it. */
interface StoreCheck {
  reason_code: string;
  message: string;
  usable: () => Promise<boolean>;
}

const succeeds = (probe: () => Promise<unknown>) => async () => {
  try {
    await probe();
    return true;
  } catch {
    return false;
  }
};

@ApiTags('health')
@Controller()
export class HealthController {
  /** In the order /readyz names them when several are down. */
  private readonly stores: StoreCheck[];

  constructor(
    config: GatewayConfig,
    database: SqliteDatabase,
    @Inject(PostgresDatabase) postgres: PostgresDatabase | null,
    audit: AuditLog,
    idempotency: IdempotencyStore,
    @InjectThrottlerStorage() throttler: ThrottlerStorage,
    policy: PolicyEngine,
    private readonly metrics: GatewayMetrics,
    private readonly reloader: ConfigReloader,
  ) {
    this.stores = [
      { reason_code: 'database_unavailable', message: 'The embedded database (GATEWAY_DATA_DIR) is not usable', usable: async () => database.isUsable() },
      ...(postgres
        ? [{ reason_code: 'postgres_unavailable', message: 'PostgreSQL (GATEWAY_DATABASE_URL) cannot be reached', usable: () => postgres.isUsable() }]
        : []),
      { reason_code: 'audit_unavailable', message: 'The audit log cannot be written', usable: () => audit.ready() },
      // Redis holds the rate-limit counters (and the replay keys without PostgreSQL): checked through the counters' own connection.
      ...(throttler instanceof ThrottlerStorageRedisService
        ? [{ reason_code: 'redis_unavailable', message: 'Redis (GATEWAY_REDIS_URL) cannot be reached', usable: succeeds(() => throttler.redis.ping()) }]
        : []),
      { reason_code: 'replay_store_unavailable', message: 'The replay store is not usable', usable: succeeds(() => idempotency.ping()) },
      { reason_code: 'policy_unavailable', message: 'The policy engine (OPA) is not healthy', usable: () => policy.ready() },
      {
        reason_code: 'workspace_unavailable',
        message: 'The workspace is not usable',
        usable: succeeds(() => access(config.paths.workspace, constants.R_OK | constants.W_OK)),
      },
    ];
  }

  @Get('metrics')
  @Public()
  @Header('Cache-Control', 'no-store')
  @ApiOkResponse({ description: 'Prometheus text format', content: { 'text/plain': {} } })
  async prometheus(@Res() res: Response): Promise<void> {
    res.type(this.metrics.registry.contentType).send(await this.metrics.registry.metrics());
  }

  @Get('healthz')
  @Public()
  @ApiOkResponse({ schema: { example: { status: 'ok' } } })
  healthz() {
    return { status: 'ok' };
  }

  @Get('readyz')
  @Public()
  @ApiOkResponse({
    description:
      'Ready. After a configuration reload was refused (SIGHUP or a changed file; the running configuration is kept), details holds { reason_code: config_reload_failed, message } until a reload is applied',
    schema: { example: { status: 'ready' } },
  })
  @ApiServiceUnavailableResponse({
    type: ErrorResponseDto,
    description:
      "not_ready: reason_code names the first store that is not usable (database_unavailable: the embedded SQLite; postgres_unavailable; audit_unavailable; redis_unavailable; replay_store_unavailable; policy_unavailable: OPA's /health; workspace_unavailable), details lists every one that is down. An upstream MCP server that cannot be reached does not make the gateway unready",
  })
  async readyz() {
    const usable = await Promise.all(this.stores.map((store) => store.usable()));
    const down = this.stores.filter((_, i) => !usable[i]);
    // A refused reload leaves the running config serving: ready, with the detail (a bad file sent to every instance must not take them all out).
    const refusedAt = this.reloader.lastRefusal;
    const reload = refusedAt
      ? [
          {
            reason_code: 'config_reload_failed',
            message: `The configuration reload at ${refusedAt} was refused (see the error log); the running configuration is kept`,
          },
        ]
      : [];
    if (down.length === 0) return { status: 'ready', ...(reload.length > 0 && { details: reload }) };
    throw new GatewayError(503, 'not_ready', down[0].reason_code, down.map((store) => store.message).join('; '), [
      ...down.map(({ reason_code, message }) => ({ reason_code, message })),
      ...reload,
    ]);
  }
}
