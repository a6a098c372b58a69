import { access, constants } from 'node:fs/promises';
import { Controller, Get, Header, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { AuditLog } from '../audit/audit-log.service';
import { Public } from '../auth/auth.decorators';
import { IdempotencyStore } from '../auth/idempotency.store';
import { ErrorResponseDto } from '../common/dto';
import { GatewayError } from '../common/errors';
import { GatewayConfig } from '../config/gateway-config';
import { PolicyEngine } from '../policy/policy-engine';
import { GatewayMetrics } from './gateway-metrics';
import { SqliteDatabase } from '../database/sqlite-database';

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(
    private readonly config: GatewayConfig,
    private readonly database: SqliteDatabase,
    private readonly audit: AuditLog,
    private readonly idempotency: IdempotencyStore,
    private readonly policy: PolicyEngine,
    private readonly metrics: GatewayMetrics,
  ) {}

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
  @ApiOkResponse({ schema: { example: { status: 'ready' } } })
  @ApiServiceUnavailableResponse({ type: ErrorResponseDto, description: 'A dependency (database, audit log, Redis, OPA, workspace) is not usable' })
  async readyz() {
    if (!this.database.isUsable()) throw notReady('database_unavailable', 'The database is not usable');
    if (!this.audit.healthy) throw notReady('audit_unavailable', 'The audit log cannot be written');
    try {
      await this.idempotency.ping();
    } catch {
      throw notReady('redis_unavailable', 'Redis (GATEWAY_REDIS_URL) cannot be reached');
    }
    if (!(await this.policy.ready())) throw notReady('policy_unavailable', 'The policy engine (OPA) is not healthy');
    try {
      await access(this.config.paths.workspace, constants.R_OK | constants.W_OK);
    } catch {
      throw notReady('workspace_unavailable', 'The workspace is not usable');
    }
    return { status: 'ready' };
  }
}

function notReady(reasonCode: string, message: string): GatewayError {
  return new GatewayError(503, 'not_ready', reasonCode, message);
}
