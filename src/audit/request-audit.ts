import { Injectable } from '@nestjs/common';
import { GatewayError, OutcomeUnrecorded } from '../core/errors';
import type { ApproverRequest, AuthenticatedCall, RequestContext } from '../context/request-context';
import type { ApproverDecision, CallNames, DecidedCall, Decision } from '../context/call-stages';
import { AuditFields } from './audit-record';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { callTraceIds } from '../telemetry/tracing';
import { AuditLog, AuditUnavailable } from './audit-log.service';

/** What an answer says, as its outcome record repeats it. */
export interface Answered {
  status?: string;
  approval_id?: string;
}

/**
 * What one request (or one MCP tool call) leaves in the audit log. Each method is one kind of
 * record, and what it means comes from its arguments: the tool-call stages pass what they
 * established (a Decision, a DecidedCall); the exception filter and the interceptor record the
 * other audited routes.
 */
@Injectable()
export class RequestAudit {
  constructor(
    private readonly log: AuditLog,
    private readonly metrics: GatewayMetrics,
  ) {}

  /**
   * The policy stage's decision, with the (redacted) arguments. Allow or pending comes before the
   * tool runs or waits; a deny is the call's only record and carries its refusal.
   */
  async recordDecision(call: AuthenticatedCall, decision: Decision): Promise<void> {
    const denial = decision.verdict === 'deny' ? decision.refusal : undefined;
    await this.log.append({
      ...identity(call),
      event: 'decision',
      decision: decision.verdict,
      arguments: call.envelope.arguments,
      ...(denial && { status: denial.status, reason_code: denial.reasonCode, http_status: denial.httpStatus, duration_ms: elapsed(call.startedAt) }),
    });
    if (denial) this.countCall(call, denial.status, 'deny');
  }

  /** An approver's decision on a stored call, before anything runs: the exact arguments and their SHA-256. */
  async recordApproval(request: ApproverRequest, approval: ApproverDecision): Promise<void> {
    await this.log.append({
      audit_id: request.auditId,
      event: 'approval',
      approval_id: approval.approvalId,
      approver_id: request.approver.id,
      decision: approval.approved ? 'allow' : 'deny',
      ...approval.call,
      arguments: approval.arguments,
      arguments_sha256: approval.argumentsSha256,
      ...callTraceIds(),
    });
  }

  /** A decided call's answer: executed, pending_approval, rejected. */
  async recordOutcome(decided: DecidedCall, httpStatus: number, answered: Answered): Promise<void> {
    const { ctx, names } = subjectOf(decided);
    await this.log.append({
      ...identity(ctx, names),
      event: 'outcome',
      status: answered.status ?? 'ok',
      http_status: httpStatus,
      approval_id: answered.approval_id,
      duration_ms: elapsed(ctx.startedAt),
    });
    if (decided.by === 'policy') this.countCall(decided.call, answered.status ?? 'ok', decided.decision.verdict);
  }

  /**
   * A decided call that failed; the error to answer with: `refusal` itself, or, when it cannot be
   * recorded, outcome_unrecorded once the call may have run (else audit_unavailable).
   */
  async recordFailedOutcome(decided: DecidedCall, refusal: GatewayError): Promise<GatewayError> {
    // The audit log failed after the tool may have run: never answer "nothing was executed" then.
    const error = refusal instanceof AuditUnavailable && decided.mayHaveRun ? new OutcomeUnrecorded() : refusal;
    const { ctx, names } = subjectOf(decided);
    try {
      await this.appendFailure(ctx, names, 'outcome', error);
    } catch {
      return decided.mayHaveRun ? new OutcomeUnrecorded() : new AuditUnavailable();
    }
    if (decided.by === 'policy') this.countCall(decided.call, error.status, decided.decision.verdict);
    return error;
  }

  /**
   * A request refused before any decision on it was recorded; the error to answer with: `refusal`
   * itself, or 503 audit_unavailable when it cannot be recorded. `verdict`: the policy's, taken but
   * not recorded (the calls metric still names it).
   */
  async recordRefusal(ctx: RequestContext, refusal: GatewayError, verdict?: Decision['verdict']): Promise<GatewayError> {
    try {
      await this.appendFailure(ctx, undefined, 'request', refusal);
    } catch {
      return new AuditUnavailable();
    }
    this.countCall(ctx, refusal.status, verdict);
    return refusal;
  }

  /** A repeated (agent_id, request_id): the stored answer was sent again, nothing ran. */
  async recordReplay(call: AuthenticatedCall, httpStatus: number): Promise<void> {
    await this.log.append({ ...identity(call), event: 'replay', status: 'replayed', http_status: httpStatus, duration_ms: elapsed(call.startedAt) });
    this.countCall(call, 'replayed');
  }

  /** The answer of an audited route that is not a tool call (listings, approval views, audit queries). */
  async recordRequest(ctx: RequestContext, httpStatus: number, answered: Answered): Promise<void> {
    await this.log.append({
      ...identity(ctx),
      event: 'request',
      status: answered.status ?? 'ok',
      http_status: httpStatus,
      approval_id: answered.approval_id,
      duration_ms: elapsed(ctx.startedAt),
    });
  }

  private async appendFailure(ctx: RequestContext, names: CallNames | undefined, event: 'request' | 'outcome', error: GatewayError): Promise<void> {
    await this.log.append({
      ...identity(ctx, names),
      event,
      status: error.status,
      reason_code: error.reasonCode,
      http_status: error.httpStatus,
      duration_ms: elapsed(ctx.startedAt),
    });
  }

  /** Tool calls only: a request refused before its envelope was read names no tool. */
  private countCall(ctx: RequestContext, status: string, verdict?: Decision['verdict']): void {
    if (!ctx.envelope) return;
    this.metrics.toolCall(ctx.channel ?? 'rest', ctx.envelope.tool, verdict, status);
  }
}

/** The request a decided call's records belong to, and the stored call they name (an approver's request carries no envelope). */
function subjectOf(decided: DecidedCall): { ctx: RequestContext; names?: CallNames } {
  return decided.by === 'policy' ? { ctx: decided.call } : { ctx: decided.request, names: decided.approval.call };
}

function identity(ctx: RequestContext, names?: CallNames): AuditFields {
  const envelope = ctx.envelope;
  return {
    audit_id: ctx.auditId,
    event: 'request',
    method: ctx.origin?.method,
    path: ctx.origin?.path,
    ...(ctx.channel && { channel: ctx.channel }),
    ...(ctx.client && { client: ctx.client }),
    request_id: envelope?.request_id ?? names?.request_id,
    agent_id: ctx.agent?.id ?? names?.agent_id,
    agent_version: envelope?.agent_version ?? names?.agent_version ?? ctx.agentVersion,
    role: ctx.agent?.role ?? names?.role,
    tool: envelope?.tool ?? names?.tool,
    approver_id: ctx.approver?.id,
    ...(ctx.oauth && {
      auth: 'oauth',
      issuer: ctx.oauth.issuer,
      subject: ctx.oauth.subject,
      client_id: ctx.oauth.client_id,
      ...(ctx.oauth.act_sub !== undefined && { act: { sub: ctx.oauth.act_sub } }),
    }),
    client_ip: ctx.origin?.client_ip,
    // The call's span, when tracing is on: the record leads to the trace, and back.
    ...callTraceIds(),
  };
}

function elapsed(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 1000) / 1000;
}
