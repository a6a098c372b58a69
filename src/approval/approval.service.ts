import { Injectable } from '@nestjs/common';
import { newId, ToolCallEnvelope } from '../common/request-context';
import type { Agent } from '../config/gateway-config';
import { GatewayConfig } from '../config/gateway-config';

export interface PendingApproval {
  approval_id: string;
  agent_id: string;
  agent_version: string;
  role: string;
  tool: string;
  arguments: Record<string, unknown>;
  request_id: string;
  created_at: string;
  expires_at: string;
}

/**
 * Holds calls that wait for a human. Kept in memory until the issue "Human approval flow"
 * gives it a database, approvers and execution.
 */
@Injectable()
export class ApprovalService {
  private readonly pending = new Map<string, PendingApproval>();

  constructor(private readonly config: GatewayConfig) {}

  submit(agent: Agent, envelope: ToolCallEnvelope): PendingApproval {
    const now = Date.now();
    const approval: PendingApproval = {
      approval_id: newId('approv'),
      agent_id: agent.id,
      agent_version: envelope.agent_version,
      role: agent.role,
      tool: envelope.tool,
      arguments: envelope.arguments,
      request_id: envelope.request_id,
      created_at: new Date(now).toISOString(),
      expires_at: new Date(now + this.config.settings.approval_ttl_s * 1000).toISOString(),
    };
    this.pending.set(approval.approval_id, approval);
    return approval;
  }
}
