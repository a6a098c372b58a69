import { Injectable } from '@nestjs/common';
import { ApprovalService } from '../approval/approval.service';
import type { RequestContext } from '../common/request-context';
import type { Agent } from '../config/gateway-config';
import { ExecutorService } from '../executor/executor.service';
import { ToolRegistry } from '../registry/tool-registry';
import type { ToolCallExecutedDto, ToolCallPendingDto, ToolListDto } from './tools.dto';

/** Rows 13–14 of API.md §4, once the guards have allowed the call. */
@Injectable()
export class ToolCallService {
  constructor(
    private readonly registry: ToolRegistry,
    private readonly approvals: ApprovalService,
    private readonly executor: ExecutorService,
  ) {}

  listFor(agent: Agent): ToolListDto {
    return {
      tools: this.registry.forRole(agent.role).map((tool) => ({
        name: tool.name,
        description: tool.description,
        input_schema: tool.input_schema,
        requires_approval: tool.requires_approval,
        timeout_ms: tool.timeout_ms,
      })),
    };
  }

  async run(ctx: RequestContext): Promise<ToolCallExecutedDto | ToolCallPendingDto> {
    const { agent, envelope, decision, auditId } = ctx as Required<RequestContext>;
    if (decision.requiresApproval) {
      const approval = await this.approvals.submit(agent, envelope, auditId);
      return {
        success: false,
        status: 'pending_approval',
        approval_id: approval.id,
        error: 'Human approval required',
        audit_id: auditId,
        request_id: envelope.request_id,
      };
    }
    const result = await this.executor.execute(decision.tool, envelope.arguments);
    return { success: true, status: 'executed', result, audit_id: auditId, request_id: envelope.request_id };
  }
}
