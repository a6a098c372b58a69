import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { access, constants } from 'node:fs/promises';
import { Public } from '../auth/auth.decorators';
import { GatewayError } from '../common/errors';
import { GatewayConfig } from '../config/gateway-config';

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(private readonly config: GatewayConfig) {}

  @Get('healthz')
  @Public()
  @ApiOkResponse({ schema: { example: { status: 'ok' } } })
  healthz() {
    return { status: 'ok' };
  }

  @Get('readyz')
  @Public()
  @ApiOkResponse({ schema: { example: { status: 'ready' } } })
  @ApiServiceUnavailableResponse({ description: 'A store is not usable' })
  async readyz() {
    try {
      await access(this.config.paths.workspace, constants.R_OK | constants.W_OK);
    } catch {
      throw new GatewayError(503, 'not_ready', 'workspace_unavailable', 'The workspace is not usable');
    }
    return { status: 'ready' };
  }
}
