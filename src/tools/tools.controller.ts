import { Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
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
import type { Request, Response } from 'express';
import { AgentAuth, ToolCallRoute } from '../context/route.decorators';
import { bodySha256Of } from '../auth/body-hash';
import { ErrorResponseDto } from '../core/dto';
import { AgentCtx, AgentRequest, AuthenticatedCall, CallCtx } from '../context/request-context';
import { ToolRegistry } from '../registry/tool-registry';
import { ToolCallBody, ToolCallPipeline } from '../pipeline/tool-call.pipeline';
import { ToolCallExecutedDto, ToolCallPendingDto, ToolCallRequestDto, ToolListDto } from '../pipeline/tool-call.dto';

@ApiTags('tools')
@Controller('api/tools')
export class ToolsController {
  constructor(
    private readonly registry: ToolRegistry,
    private readonly pipeline: ToolCallPipeline,
  ) {}

  @Get()
  @AgentAuth()
  @ApiOperation({ summary: "The calling agent's tools, as function definitions for its model" })
  @ApiOkResponse({ type: ToolListDto })
  list(@AgentCtx() request: AgentRequest): ToolListDto {
    return { tools: this.registry.visibleTo(request.agent.role).map((tool) => tool.definition) };
  }

  @Post('call')
  @HttpCode(200)
  @ToolCallRoute()
  @ApiOperation({ summary: 'Call a tool: signed, checked, limited, approved when required, executed, audited' })
  @ApiBody({ type: ToolCallRequestDto })
  @ApiOkResponse({ type: ToolCallExecutedDto, description: 'Executed' })
  @ApiAcceptedResponse({ type: ToolCallPendingDto, description: 'Waiting for a human approver' })
  @ApiBadRequestResponse({ type: ErrorResponseDto, description: 'invalid_request (envelope, JSON, depth) or invalid_arguments' })
  @ApiForbiddenResponse({
    type: ErrorResponseDto,
    description:
      'denied: tool_not_registered, agent_version_not_allowed, tool_not_allowed_for_role, forbidden_field, path_outside_workspace, host_not_allowed, hard_linked_file, directory_not_deletable, tool_definition_changed',
  })
  @ApiPayloadTooLargeResponse({ type: ErrorResponseDto, description: 'Body over max_body_bytes' })
  @ApiUnsupportedMediaTypeResponse({ type: ErrorResponseDto, description: 'Body is not application/json' })
  @ApiTooManyRequestsResponse({ type: ErrorResponseDto, description: 'too_many_pending: the agent already holds max_pending_approvals_per_agent' })
  @ApiResponse({ status: 502, type: ErrorResponseDto, description: 'tool_error' })
  @ApiGatewayTimeoutResponse({ type: ErrorResponseDto, description: 'tool_timeout' })
  async call(@CallCtx() call: AuthenticatedCall, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<ToolCallBody> {
    const answer = await this.pipeline.run(call, bodySha256Of(req));
    res.status(answer.httpStatus);
    if (answer.replayed) res.setHeader('Idempotent-Replayed', 'true');
    if (answer.headers) res.set(answer.headers);
    return answer.body;
  }
}
