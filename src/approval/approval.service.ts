import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { GatewayError, InvalidRequest, NotFound, PolicyDenied } from '../common/errors';
import { newId, RequestContext, ToolCallEnvelope } from '../common/request-context';
import { AuditLog } from '../audit/audit-log.service';
import { sha256Hex } from '../auth/signature';
import { Redactor } from '../audit/redactor';
import { Agent, GatewayConfig, Tool } from '../config/gateway-config';
import { ExecutorService } from '../executor/executor.service';
import { GatewayMetrics } from '../health/gateway-metrics';
import { PolicyService } from '../policy/policy.service';
import { APPROVAL_STATUSES, ApprovalRecord, ApprovalRepository, ApprovalStatus, StoredError } from './approval.repository';
import type { ApprovalDecisionDto, ApprovalDecisionResultDto, ApprovalViewDto } from './approval.dto';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * Calls that wait for a human (API.md §6): stored with their verified envelope, decided once by an
 * allowed approver, re-checked against the current policy and executed exactly once.
 */
@Injectable()
export class ApprovalService implements OnApplicationBootstrap {
  private readonly logger = new Logger(ApprovalService.name);

  constructor(
    private readonly config: GatewayConfig,
    private readonly repository: ApprovalRepository,
    private readonly policy: PolicyService,
    private readonly executor: ExecutorService,
    private readonly audit: AuditLog,
    private readonly redactor: Redactor,
    metrics: GatewayMetrics,
  ) {
    metrics.countPendingWith(() => this.repository.countPending(Date.now()));
  }

  /** A call approved before a crash has an unknown outcome: show it as failed, never re-run it. */
  async onApplicationBootstrap(): Promise<void> {
    const interrupted = await this.repository.failInterrupted();
    if (interrupted > 0) this.logger.warn(`${interrupted} approved call(s) were interrupted by a stop before their outcome was stored; marked failed (reason_code interrupted)`);
  }

  async submit(agent: Agent, envelope: ToolCallEnvelope, auditId: string): Promise<ApprovalRecord> {
    const now = Date.now();
    const serialized = JSON.stringify(envelope);
    const record = {
      id: newId('approv'),
      agent_id: agent.id,
      agent_version: envelope.agent_version,
      role: agent.role,
      tool: envelope.tool,
      request_id: envelope.request_id,
      envelope: serialized,
      envelope_sha256: sha256Hex(serialized),
      audit_id: auditId,
      created_at: now,
      expires_at: now + this.config.settings.approval_ttl_s * 1000,
    };
    const max = this.config.settings.max_pending_approvals_per_agent;
    if (!(await this.repository.insertPending(record, max))) {
      throw new GatewayError(429, 'rate_limited', 'too_many_pending', `This agent already has ${max} approvals pending`);
    }
    return { ...record, status: 'pending', decided_by: null, decided_at: null, comment: null, result: null, error: null };
  }

  async list(status: ApprovalStatus | undefined, limit: number): Promise<ApprovalViewDto[]> {
    const now = Date.now();
    await this.repository.expire(now);
    return (await this.repository.list(status, limit)).map((r) => this.view(r, now));
  }

  /** For an approver, or for the agent that asked (anyone else: 404, so ids reveal nothing). */
  async get(id: string, caller: RequestContext): Promise<ApprovalViewDto> {
    const record = await this.repository.get(id);
    if (!record || (caller.agent && record.agent_id !== caller.agent.id)) throw new NotFound('No such approval');
    return this.view(record, Date.now());
  }

  async decide(ctx: RequestContext, decision: ApprovalDecisionDto): Promise<ApprovalDecisionResultDto> {
    const approver = ctx.approver!;
    const record = await this.repository.get(decision.approval_id);
    if (!record) throw new NotFound('No such approval');
    if (approver.tools && !approver.tools.includes(record.tool)) {
      throw new PolicyDenied('approver_not_allowed_for_tool', `Approver "${approver.id}" may not decide on tool "${record.tool}"`);
    }
    const now = Date.now();
    const claimed = await this.repository.decide(record.id, { approverId: approver.id, approved: decision.approved, comment: decision.comment ?? null, now });
    if (!claimed) {
      const current = (await this.repository.get(record.id))!;
      if (current.status === 'expired' || (current.status === 'pending' && current.expires_at <= now)) {
        await this.repository.expire(now);
        throw new GatewayError(410, 'expired', 'expired', 'This approval expired before it was decided');
      }
      throw new GatewayError(409, 'conflict', 'already_decided', `This approval was already decided (${current.status})`);
    }
    await this.recordDecision(ctx, claimed, decision.approved);
    if (!decision.approved) return { success: false, status: 'rejected', approval_id: record.id, audit_id: ctx.auditId };
    const result = await this.execute(claimed);
    return { success: true, status: 'executed', approval_id: record.id, result, audit_id: ctx.auditId };
  }

  /**
   * The approver's decision goes on record before anything runs; if it cannot, nothing runs and
   * the approval is pending again (the approver may decide once the audit log is back).
   */
  private async recordDecision(ctx: RequestContext, record: ApprovalRecord, approved: boolean): Promise<void> {
    try {
      await this.audit.append({
        audit_id: ctx.auditId,
        event: 'approval',
        approval_id: record.id,
        approver_id: ctx.approver!.id,
        decision: approved ? 'allow' : 'deny',
        request_id: record.request_id,
        agent_id: record.agent_id,
        agent_version: record.agent_version,
        role: record.role,
        tool: record.tool,
        arguments: (JSON.parse(record.envelope) as ToolCallEnvelope).arguments,
      });
      ctx.decisionRecorded = true;
    } catch (err) {
      await this.repository.undecide(record.id);
      throw err;
    }
  }

  /** Runs exactly the stored envelope, after the current policy and workspace rules allow it again. */
  private async execute(record: ApprovalRecord): Promise<Record<string, unknown>> {
    let allowed: { tool: Tool; envelope: ToolCallEnvelope };
    try {
      allowed = await this.recheck(record);
    } catch (err) {
      // Nothing ran. An outage (503: the policy engine, a store) leaves the approval pending, to be
      // approved again once it is over; a refusal is final.
      if (err instanceof GatewayError && err.httpStatus === 503) await this.repository.undecide(record.id);
      else await this.repository.complete(record.id, { error: storedError(err) });
      throw err;
    }
    try {
      const result = await this.executor.execute(allowed.tool, allowed.envelope.arguments);
      await this.repository.complete(record.id, { result });
      return result;
    } catch (err) {
      await this.repository.complete(record.id, { error: storedError(err) });
      throw err;
    }
  }

  private async recheck(record: ApprovalRecord): Promise<{ tool: Tool; envelope: ToolCallEnvelope }> {
    if (sha256Hex(record.envelope) !== record.envelope_sha256) {
      throw new GatewayError(409, 'conflict', 'envelope_mismatch', 'The stored call does not match what was asked; not executed');
    }
    const envelope = JSON.parse(record.envelope) as ToolCallEnvelope;
    const agent = this.config.agents.get(record.agent_id);
    if (!agent) throw new PolicyDenied('unknown_agent', 'The agent that asked is no longer configured');
    const { tool } = await this.policy.evaluate(agent, envelope);
    return { tool, envelope };
  }

  /** What approvers and agents see. The gateway's own ids and times are shown as they are (an id is
   * not personal data, and a redacted one could not be approved); what the agent and the tool
   * supplied is redacted. */
  private view(r: ApprovalRecord, now: number): ApprovalViewDto {
    const { arguments: args } = JSON.parse(r.envelope) as ToolCallEnvelope;
    return {
      approval_id: r.id,
      status: r.status === 'pending' && r.expires_at <= now ? 'expired' : r.status,
      agent_id: r.agent_id,
      agent_version: r.agent_version,
      role: r.role,
      tool: r.tool,
      arguments: this.redactor.redact(args),
      request_id: r.request_id,
      created_at: iso(r.created_at)!,
      expires_at: iso(r.expires_at)!,
      decided_by: r.decided_by,
      decided_at: iso(r.decided_at),
      comment: r.comment === null ? null : this.redactor.redactString(r.comment),
      ...(r.result !== null && { result: this.redactor.redact(JSON.parse(r.result)) }),
      ...(r.error !== null && { error: this.redactor.redact(JSON.parse(r.error)) }),
    };
  }
}

function storedError(err: unknown): StoredError {
  const error = err instanceof GatewayError ? err : new GatewayError(500, 'internal_error', 'internal_error', 'Internal error');
  return { http_status: error.httpStatus, status: error.status, reason_code: error.reasonCode, error: error.message };
}

export function parseStatusFilter(value: string | undefined): ApprovalStatus | undefined {
  if (value === undefined || value === '') return undefined;
  const status = APPROVAL_STATUSES.find((s) => s === value);
  if (!status) throw new InvalidRequest('invalid_query', `status must be one of ${APPROVAL_STATUSES.join(', ')}`);
  return status;
}
