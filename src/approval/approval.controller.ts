import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
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
import { AgentOrApproverAuth, ApproverAuth } from '../auth/auth.decorators';
import { ErrorResponseDto } from '../common/dto';
import { parseLimit } from '../common/query';
import { JsonSchemaPipe } from '../common/json-schema.pipe';
import { Ctx, RequestContext } from '../common/request-context';
import { ApprovalDecisionDto, ApprovalDecisionResultDto, approvalDecisionSchema, ApprovalListDto, ApprovalViewDto } from './approval.dto';
import { APPROVAL_STATUSES } from './approval.repository';
import { ApprovalService, parseStatusFilter } from './approval.service';

@ApiTags('approvals')
@Controller()
export class ApprovalController {
  constructor(private readonly approvals: ApprovalService) {}

  @Post('approve')
  @HttpCode(200)
  @ApproverAuth()
  @ApiOperation({ summary: 'Approve (the stored call is re-checked and executed now) or reject a pending call' })
  @ApiBody({ type: ApprovalDecisionDto })
  @ApiOkResponse({ type: ApprovalDecisionResultDto, description: 'executed, or rejected' })
  @ApiBadRequestResponse({ type: ErrorResponseDto })
  @ApiForbiddenResponse({ type: ErrorResponseDto, description: 'approver_not_allowed_for_tool, or the current policy no longer allows the call' })
  @ApiNotFoundResponse({ type: ErrorResponseDto, description: 'not_found' })
  @ApiConflictResponse({ type: ErrorResponseDto, description: 'already_decided' })
  @ApiGoneResponse({ type: ErrorResponseDto, description: 'expired' })
  @ApiResponse({ status: 502, type: ErrorResponseDto, description: 'tool_error (stored as failed)' })
  @ApiResponse({ status: 504, type: ErrorResponseDto, description: 'tool_timeout (stored as failed)' })
  decide(
    @Ctx() ctx: RequestContext,
    @Body(new JsonSchemaPipe<ApprovalDecisionDto>(approvalDecisionSchema)) decision: ApprovalDecisionDto,
  ): Promise<ApprovalDecisionResultDto> {
    return this.approvals.decide(ctx, decision);
  }

  @Get('api/approvals')
  @ApproverAuth()
  @ApiOperation({ summary: 'Approvals, newest first' })
  @ApiQuery({ name: 'status', required: false, enum: APPROVAL_STATUSES })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 } })
  @ApiOkResponse({ type: ApprovalListDto })
  @ApiBadRequestResponse({ type: ErrorResponseDto })
  async list(@Query('status') status?: string, @Query('limit') limit?: string): Promise<ApprovalListDto> {
    return { approvals: await this.approvals.list(parseStatusFilter(status), parseLimit(limit, 500)) };
  }

  @Get('api/approvals/:id')
  @AgentOrApproverAuth()
  @ApiOperation({ summary: 'One approval: for an approver, or for the agent that asked (with result once executed)' })
  @ApiOkResponse({ type: ApprovalViewDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto, description: 'No such approval (or not yours)' })
  get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<ApprovalViewDto> {
    return this.approvals.get(id, ctx);
  }
}
