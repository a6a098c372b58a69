import { Injectable } from '@nestjs/common';
import { GatewayError } from '../common/errors';
import type { RequestContext } from '../common/request-context';
import { AuditFields } from './audit-record';
import { GatewayMetrics } from '../health/gateway-metrics';
import { AuditLog } from './audit-log.service';

/**
 * What one request (or one MCP tool call) leaves in the audit log. The tool-call pipeline calls it
 * for every step of a call; the exception filter and the interceptor for the other audited routes.
 */
@Injectable()
export class RequestAudit {
  constructor(
    private readonly log: AuditLog,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** Before a tool runs or waits: the policy's decision, with the (redacted) arguments. */
  async recordDecision(ctx: RequestContext): Promise<void> {
    if (!ctx.decision) return;
    await this.log.append({
      ...identity(ctx),
      event: 'decision',
      decision: ctx.decision.requiresApproval ? 'pending' : 'allow',
      arguments: ctx.envelope?.arguments,
    });
    ctx.decisionRecorded = true;
  }

  async recordSuccess(ctx: RequestContext, httpStatus: number, body: unknown): Promise<void> {
    const { status, approval_id } = (body ?? {}) as { status?: string; approval_id?: string };
    this.countCall(ctx, status ?? 'ok');
    await this.log.append({
      ...identity(ctx),
      event: ctx.decisionRecorded ? 'outcome' : 'request',
      status: status ?? 'ok',
      http_status: httpStatus,
      approval_id,
      duration_ms: elapsed(ctx.startedAt),
    });
  }

  async recordFailure(ctx: RequestContext, error: GatewayError): Promise<void> {
    // A tool call refused once its envelope was read (rows 5–12) is a decision; before it, a refused request.
    const deniedByPolicy = !ctx.decisionRecorded && ctx.agent !== undefined && ctx.envelope !== undefined;
    this.countCall(ctx, error.status, deniedByPolicy ? 'deny' : undefined);
    await this.log.append({
      ...identity(ctx),
      event: ctx.decisionRecorded ? 'outcome' : deniedByPolicy ? 'decision' : 'request',
      ...(deniedByPolicy && { decision: 'deny' as const, arguments: ctx.envelope!.arguments }),
      status: error.status,
      reason_code: error.reasonCode,
      http_status: error.httpStatus,
      duration_ms: elapsed(ctx.startedAt),
    });
  }

  /** A repeated (agent_id, request_id): the stored answer was sent again, nothing ran. */
  async recordReplay(ctx: RequestContext, httpStatus: number): Promise<void> {
    this.countCall(ctx, 'replayed');
    await this.log.append({ ...identity(ctx), event: 'replay', status: 'replayed', http_status: httpStatus, duration_ms: elapsed(ctx.startedAt) });
  }

  private countCall(ctx: RequestContext, status: string, decision?: string): void {
    if (!ctx.envelope) return; // tool calls only: a request refused before its envelope was read names no tool
    const recorded = ctx.decision ? (ctx.decision.requiresApproval ? 'pending' : 'allow') : decision;
    this.metrics.toolCall(ctx.channel ?? 'rest', ctx.envelope.tool, recorded, status);
  }
}

function identity(ctx: RequestContext): AuditFields {
  const envelope = ctx.envelope;
  return {
    audit_id: ctx.auditId,
    event: 'request',
    method: ctx.origin?.method,
    path: ctx.origin?.path,
    ...(ctx.channel && { channel: ctx.channel }),
    ...(ctx.client && { client: ctx.client }),
    request_id: envelope?.request_id,
    agent_id: ctx.agent?.id,
    agent_version: envelope?.agent_version,
    role: ctx.agent?.role,
    tool: envelope?.tool,
    approver_id: ctx.approver?.id,
    client_ip: ctx.origin?.client_ip,
  };
}

function elapsed(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 1000) / 1000;
}
