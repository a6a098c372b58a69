import { Controller, Get, HttpCode, Post, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBody,
  ApiForbiddenResponse,
  ApiGatewayTimeoutResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnsupportedMediaTypeResponse,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { AgentAuth, ToolCallRoute } from '../auth/auth.decorators';
import { ErrorResponseDto } from '../common/dto';
import { Ctx, RequestContext } from '../common/request-context';
import { ToolCallService } from './tool-call.service';
import { ToolCallExecutedDto, ToolCallPendingDto, ToolCallRequestDto, ToolListDto } from './tools.dto';

@ApiTags('tools')
@Controller('api/tools')
export class ToolsController {
  constructor(private readonly calls: ToolCallService) {}

  @Get()
  @AgentAuth()
  @ApiOperation({ summary: "The calling agent's tools, as function definitions for its model (API.md §4b)" })
  @ApiOkResponse({ type: ToolListDto })
  list(@Ctx() ctx: RequestContext): ToolListDto {
    return this.calls.listFor(ctx.agent!);
  }

  @Post('call')
  @HttpCode(200)
  @ToolCallRoute()
  @ApiOperation({ summary: 'Call a tool (API.md §4): signed, checked, approved when required, executed' })
  @ApiBody({ type: ToolCallRequestDto })
  @ApiOkResponse({ type: ToolCallExecutedDto, description: 'Executed' })
  @ApiAcceptedResponse({ type: ToolCallPendingDto, description: 'Waiting for a human approver' })
  @ApiBadRequestResponse({ type: ErrorResponseDto, description: 'invalid_request (envelope, JSON, depth) or invalid_arguments' })
  @ApiForbiddenResponse({ type: ErrorResponseDto, description: 'denied: tool_not_registered, agent_version_not_allowed, tool_not_allowed_for_role, forbidden_field, path_outside_workspace' })
  @ApiPayloadTooLargeResponse({ type: ErrorResponseDto, description: 'Body over max_body_bytes' })
  @ApiUnsupportedMediaTypeResponse({ type: ErrorResponseDto, description: 'Body is not application/json' })
  @ApiTooManyRequestsResponse({ type: ErrorResponseDto, description: 'too_many_pending: the agent already holds max_pending_approvals_per_agent' })
  @ApiResponse({ status: 502, type: ErrorResponseDto, description: 'tool_error' })
  @ApiGatewayTimeoutResponse({ type: ErrorResponseDto, description: 'tool_timeout' })
  async call(@Ctx() ctx: RequestContext, @Res({ passthrough: true }) res: Response): Promise<ToolCallExecutedDto | ToolCallPendingDto> {
    const outcome = await this.calls.run(ctx);
    if (outcome.status === 'pending_approval') res.status(202);
    return outcome;
  }
}
