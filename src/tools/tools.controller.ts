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
import { type CallTrace, tracingOn, traceToolCall } from '../telemetry/tracing';
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
  @ApiOkResponse({
    type: ToolCallExecutedDto,
    description:
      'executed. A replay (the same agent_id, request_id and body within settings.idempotency_ttl_s) gets the first answer again, whatever its status, with Idempotent-Replayed: true, and nothing runs; an answer over 64 KiB is kept as a stand-in with { replay_not_kept, bytes, sha256 } in place of result or details',
  })
  @ApiAcceptedResponse({
    type: ToolCallPendingDto,
    description: 'pending_approval: waiting for a human approver (collect the outcome with GET /api/approvals/{approval_id})',
  })
  @ApiBadRequestResponse({
    type: ErrorResponseDto,
    description:
      "invalid_request: malformed_json, invalid_envelope (ajv errors in details), arguments_too_deep (over 64 levels), invalid_request_target; invalid_arguments: the arguments do not match the tool's input_schema (ajv errors in details), or an http URL placeholder would make a . or .. path segment",
  })
  @ApiForbiddenResponse({
    type: ErrorResponseDto,
    description:
      "denied: tool_not_registered, agent_version_not_allowed, tool_not_allowed_for_role, forbidden_field (details: [{path}]; keys at any depth, compared after folding case, compatibility forms, lookalikes, accents and non-alphanumerics), path_outside_workspace, host_not_allowed (also a redirect elsewhere), hard_linked_file, directory_not_deletable, tool_definition_changed (an upstream MCP tool differs from its pin in mcp-lock.json); OPA's own deny reasons pass through. All before approval is asked",
  })
  @ApiPayloadTooLargeResponse({ type: ErrorResponseDto, description: 'Body over max_body_bytes' })
  @ApiUnsupportedMediaTypeResponse({ type: ErrorResponseDto, description: 'Body is not application/json' })
  @ApiTooManyRequestsResponse({
    type: ErrorResponseDto,
    description:
      "rate_limited: the agent's (or its role's) or the tool's rate_limit is spent (a replay spends it too), or this address spent its failed-authentication budget; too_many_pending: the agent already holds settings.max_pending_approvals_per_agent. Retry-After: seconds",
  })
  @ApiResponse({
    status: 409,
    type: ErrorResponseDto,
    description:
      'conflict: request_in_progress (the first call with this request_id is still running), request_id_reused (the same request_id with another body), request_interrupted (the first was cut off by a stop and is never run again), approval_already_filed (this request_id already filed an approval, named in the error)',
  })
  @ApiResponse({
    status: 503,
    type: ErrorResponseDto,
    description:
      'Refused, nothing ran: audit_unavailable (the record could not be written), policy_unavailable (OPA: opa_timeout, opa_unreachable, opa_error_status, opa_undefined_result, opa_malformed_result), rate_limit_unavailable (rate_limit_store_unavailable, idempotency_store_unavailable), tool_unavailable (an upstream MCP server has not answered, or no longer offers the tool), database_unavailable. Except audit_unavailable/outcome_unrecorded: the call may have run, its outcome is not on record',
  })
  @ApiResponse({
    status: 502,
    type: ErrorResponseDto,
    description:
      'tool_error: the tool failed: a file error, an upstream that cannot be reached, a result over 1 MiB (an MCP message over 2 MiB), an upstream MCP isError, a secret that is not available',
  })
  @ApiGatewayTimeoutResponse({
    type: ErrorResponseDto,
    description:
      "tool_timeout: not finished within the tool's timeout_ms (an http or MCP request is cancelled; a file write or delete is abandoned before it takes effect)",
  })
  async call(@CallCtx() call: AuthenticatedCall, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<ToolCallBody> {
    const run = () => this.pipeline.run(call, bodySha256Of(req));
    const answer = await (tracingOn() ? traceToolCall(traced(call, req), run) : run());
    res.status(answer.httpStatus);
    if (answer.replayed) res.setHeader('Idempotent-Replayed', 'true');
    if (answer.headers) res.set(answer.headers);
    return answer.body;
  }
}

/** The call's span: parented by the request's `traceparent` header, started when the request arrived. */
function traced(call: AuthenticatedCall, req: Request): CallTrace {
  const parent = { traceparent: req.headers.traceparent, tracestate: req.headers.tracestate };
  return { channel: 'rest', tool: call.envelope.tool, agentId: call.agent.id, arrivedAt: call.startedAt, parent, owner: call };
}
