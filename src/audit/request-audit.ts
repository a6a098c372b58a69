import { Injectable } from '@nestjs/common';
import { GatewayError, OutcomeUnrecorded } from '../common/errors';
import type { RequestContext } from '../common/request-context';
import { AuditFields } from './audit-record';
import { GatewayMetrics } from '../health/gateway-metrics';
import { AuditLog, AuditUnavailable } from './audit-log.service';

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
    await this.log.append({
      ...identity(ctx),
      event: ctx.decisionRecorded ? 'outcome' : 'request',
      status: status ?? 'ok',
      http_status: httpStatus,
      approval_id,
      duration_ms: elapsed(ctx.startedAt),
    });
    this.countCall(ctx, status ?? 'ok');
  }

  /**
   * A refusal on record; the error to answer with: `error` itself, or 503 audit_unavailable when it
   * cannot be recorded. The one place a refusal is recorded, for the pipeline and the filter alike.
   */
  async recordRefusal(ctx: RequestContext, refusal: GatewayError): Promise<GatewayError> {
    // The audit log failed after the tool may have run: never answer "nothing was executed" then.
    const error = refusal instanceof AuditUnavailable && ctx.mayHaveRun ? new OutcomeUnrecorded() : refusal;
    try {
      await this.recordFailure(ctx, error);
      return error;
    } catch {
      return ctx.mayHaveRun ? new OutcomeUnrecorded() : new AuditUnavailable();
    }
  }

  private async recordFailure(ctx: RequestContext, error: GatewayError): Promise<void> {
    // A refusal by the policy step (rows 7–12) is the call's `deny` decision; any other refusal
    // before a decision was recorded is a refused request.
    const deniedByPolicy = !ctx.decisionRecorded && ctx.deniedByPolicy === true;
    await this.log.append({
      ...identity(ctx),
      event: ctx.decisionRecorded ? 'outcome' : deniedByPolicy ? 'decision' : 'request',
      ...(deniedByPolicy && { decision: 'deny' as const, arguments: ctx.envelope!.arguments }),
      status: error.status,
      reason_code: error.reasonCode,
      http_status: error.httpStatus,
      duration_ms: elapsed(ctx.startedAt),
    });
    this.countCall(ctx, error.status, deniedByPolicy ? 'deny' : undefined);
  }

  /** A repeated (agent_id, request_id): the stored answer was sent again, nothing ran. */
  async recordReplay(ctx: RequestContext, httpStatus: number): Promise<void> {
    await this.log.append({ ...identity(ctx), event: 'replay', status: 'replayed', http_status: httpStatus, duration_ms: elapsed(ctx.startedAt) });
    this.countCall(ctx, 'replayed');
  }

  private countCall(ctx: RequestContext, status: string, decision?: string): void {
    if (!ctx.envelope) return; // tool calls only: a request refused before its envelope was read names no tool
    const recorded = ctx.decision ? (ctx.decision.requiresApproval ? 'pending' : 'allow') : decision;
    this.metrics.toolCall(ctx.channel ?? 'rest', ctx.envelope.tool, recorded, status);
  }
}

function identity(ctx: RequestContext): AuditFields {
  const envelope = ctx.envelope;
  const call = ctx.decidedCall;
  return {
    audit_id: ctx.auditId,
    event: 'request',
    method: ctx.origin?.method,
    path: ctx.origin?.path,
    ...(ctx.channel && { channel: ctx.channel }),
    ...(ctx.client && { client: ctx.client }),
    request_id: envelope?.request_id ?? call?.request_id,
    agent_id: ctx.agent?.id ?? call?.agent_id,
    agent_version: envelope?.agent_version ?? call?.agent_version ?? ctx.agentVersion,
    role: ctx.agent?.role ?? call?.role,
    tool: envelope?.tool ?? call?.tool,
    approver_id: ctx.approver?.id,
    client_ip: ctx.origin?.client_ip,
  };
}

function elapsed(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 1000) / 1000;
}
