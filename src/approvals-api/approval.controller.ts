import { Body, Controller, Get, HttpCode, Param, Post, Query, Res, SetMetadata, UseInterceptors } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiForbiddenResponse,
  ApiGoneResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { AgentOrApproverAuth, ApproverAuth, PIPELINE_RECORDED } from '../context/route.decorators';
import { ErrorResponseDto } from '../core/dto';
import { parseLimit } from '../core/query';
import { JsonSchemaPipe } from '../core/json-schema.pipe';
import { ApproverCtx, ApproverRequest, Ctx, RequestContext } from '../context/request-context';
import { ApprovalPreviewer } from '../approval/approval-preview';
import {
  ApprovalDecisionDto,
  ApprovalDecisionResultDto,
  approvalDecisionSchema,
  ApprovalListDto,
  ApprovalPreviewDto,
  ApprovalViewDto,
} from '../approval/approval.dto';
import { APPROVAL_STATUSES } from '../approval/approval.repository';
import { ApprovalService, parseStatusFilter } from '../approval/approval.service';
import { AuditInterceptor } from '../edge/audit.interceptor';
import type { ErrorBody } from '../pipeline/error-body';
import { ToolCallPipeline } from '../pipeline/tool-call.pipeline';

const LIST_DEFAULT = 20;
const LIST_MAX = 100;

@ApiTags('approvals')
@Controller()
// Only on the routes that need it: an interceptor anywhere puts Nest's rxjs chain on every route (the agents' too).
@UseInterceptors(AuditInterceptor)
export class ApprovalController {
  constructor(
    private readonly approvals: ApprovalService,
    private readonly previewer: ApprovalPreviewer,
    private readonly pipeline: ToolCallPipeline,
  ) {}

  @Post('approve')
  @HttpCode(200)
  @ApproverAuth()
  // Recorded by the pipeline, decision before outcome; a refusal before the claim, by the exception filter.
  @SetMetadata(PIPELINE_RECORDED, true)
  @ApiOperation({ summary: 'Approve (the stored call is re-checked and executed now) or reject a pending call' })
  @ApiBody({ type: ApprovalDecisionDto })
  @ApiOkResponse({ type: ApprovalDecisionResultDto, description: 'executed, or rejected (the call never runs). Of racing decisions exactly one wins' })
  @ApiBadRequestResponse({ type: ErrorResponseDto, description: 'invalid_request: the body is not { approval_id, approved, comment? }' })
  @ApiForbiddenResponse({
    type: ErrorResponseDto,
    description:
      'approver_not_allowed_for_tool (approvers[].tools); or the stored call, re-checked now, is refused by the current config (unknown_agent, a policy or workspace reason): the approval becomes failed',
  })
  @ApiNotFoundResponse({ type: ErrorResponseDto, description: 'not_found' })
  @ApiConflictResponse({
    type: ErrorResponseDto,
    description:
      'conflict: already_decided (someone else decided first), envelope_mismatch (the stored call does not match what was asked: not executed), claim_lapsed (held past its lease before it ran: marked failed, not executed)',
  })
  @ApiGoneResponse({ type: ErrorResponseDto, description: 'expired: not decided within settings.approval_ttl_s' })
  @ApiResponse({ status: 502, type: ErrorResponseDto, description: 'tool_error (stored as failed)' })
  @ApiResponse({ status: 504, type: ErrorResponseDto, description: 'tool_timeout (stored as failed)' })
  @ApiResponse({
    status: 503,
    type: ErrorResponseDto,
    description:
      'The decision could not be put on record, or the policy engine or database could not be asked (audit_unavailable, policy_unavailable, database_unavailable): nothing ran and the approval is pending again. outcome_unrecorded: the tool ran but its outcome could not be stored; the approval is never run again and shows as failed (interrupted) once its lease lapses',
  })
  async decide(
    @ApproverCtx() request: ApproverRequest,
    @Body(new JsonSchemaPipe<ApprovalDecisionDto>(approvalDecisionSchema)) decision: ApprovalDecisionDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<ApprovalDecisionResultDto | ErrorBody> {
    const answer = await this.pipeline.runApproved(request, await this.approvals.claim(request.approver, decision));
    res.status(answer.httpStatus);
    if (answer.headers) res.set(answer.headers);
    return answer.body;
  }

  @Get('api/approvals')
  @ApproverAuth()
  @ApiOperation({ summary: 'Approvals of the tools this approver may decide, newest first, one page at a time; arguments redacted and large ones summarized' })
  @ApiQuery({ name: 'status', required: false, enum: APPROVAL_STATUSES })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: LIST_MAX, default: LIST_DEFAULT } })
  @ApiQuery({ name: 'cursor', required: false, description: 'The next_cursor of the previous page' })
  @ApiOkResponse({ type: ApprovalListDto })
  @ApiBadRequestResponse({ type: ErrorResponseDto, description: 'invalid_query: an unknown status, a limit outside 1–100, a cursor that is not a next_cursor' })
  list(
    @ApproverCtx() request: ApproverRequest,
    @Query('status') status?: string,
    @Query('limit') limit?: string,
    @Query('cursor') cursor?: string,
  ): Promise<ApprovalListDto> {
    return this.approvals.list(request.approver, {
      status: parseStatusFilter(status),
      limit: parseLimit(limit, LIST_MAX, LIST_DEFAULT),
      cursor: cursor === '' ? undefined : cursor,
    });
  }

  @Get('api/approver')
  @ApproverAuth()
  @ApiOperation({ summary: 'Who this bearer token signs in as: the approver id, the tools it may decide (null: all), whether it may read the audit log' })
  @ApiOkResponse({
    schema: {
      type: 'object',
      required: ['approver_id', 'tools', 'audit'],
      properties: {
        approver_id: { type: 'string', example: 'alice' },
        tools: { type: 'array', items: { type: 'string' }, nullable: true, example: ['write_file', 'delete_file'] },
        audit: { type: 'boolean' },
      },
    },
  })
  whoami(@ApproverCtx() request: ApproverRequest): { approver_id: string; tools: string[] | null; audit: boolean } {
    const { id, tools, audit } = request.approver;
    return { approver_id: id, tools: tools ?? null, audit };
  }

  @Get('api/approvals/:id')
  @AgentOrApproverAuth()
  @ApiOperation({
    summary: 'One approval: for an approver, the exact arguments that will run; for the agent that asked, redacted (with result once executed)',
  })
  @ApiOkResponse({ type: ApprovalViewDto })
  @ApiForbiddenResponse({ type: ErrorResponseDto, description: 'approver_not_allowed_for_tool' })
  @ApiNotFoundResponse({
    type: ErrorResponseDto,
    description:
      "not_found: no such approval, or another agent's (ids reveal nothing); decided approvals are deleted settings.approval_retention_s after their decision",
  })
  get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<ApprovalViewDto> {
    return this.approvals.get(id, ctx);
  }

  @Get('api/approvals/:id/preview')
  @ApproverAuth()
  @ApiOperation({
    summary:
      'What approving would do, computed now and read-only: the diff of a write, the file a delete removes, the request an http tool sends (secrets as ${secret:NAME})',
  })
  @ApiOkResponse({ type: ApprovalPreviewDto })
  @ApiForbiddenResponse({ type: ErrorResponseDto, description: 'approver_not_allowed_for_tool' })
  @ApiNotFoundResponse({ type: ErrorResponseDto, description: 'No such approval' })
  async preview(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<ApprovalPreviewDto> {
    return this.previewer.preview(await this.approvals.get(id, ctx));
  }
}
