import { access, constants } from 'node:fs/promises';
import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { Public } from '../auth/auth.decorators';
import { ErrorResponseDto } from '../common/dto';
import { GatewayError } from '../common/errors';
import { GatewayConfig } from '../config/gateway-config';
import { SqliteDatabase } from '../database/sqlite-database';

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(
    private readonly config: GatewayConfig,
    private readonly database: SqliteDatabase,
  ) {}

  @Get('healthz')
  @Public()
  @ApiOkResponse({ schema: { example: { status: 'ok' } } })
  healthz() {
    return { status: 'ok' };
  }

  @Get('readyz')
  @Public()
  @ApiOkResponse({ schema: { example: { status: 'ready' } } })
  @ApiServiceUnavailableResponse({ type: ErrorResponseDto, description: 'A store (database, workspace) is not usable' })
  async readyz() {
    if (!this.database.isUsable()) throw notReady('database_unavailable', 'The database is not usable');
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
