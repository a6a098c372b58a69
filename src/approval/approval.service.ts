import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { GatewayError, InternalError, InvalidRequest, NotFound, PolicyDenied } from '../core/errors';
import { newId, RequestContext, ToolCallEnvelope } from '../context/request-context';
import type { ApproverDecision } from '../context/call-stages';
import { sha256Hex } from '../core/hashing';
import { mapJson } from '../core/json-walk';
import { Redactor } from '../redaction/redactor';
import { Agent, Approver, GatewayConfig, Tool } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { AlreadyDecided, ApprovalExpired, ClaimLapsed, EnvelopeMismatch, TooManyPending } from './approval-errors';
import { ApprovalWebhook } from './approval-webhook';
import { APPROVAL_STATUSES, ApprovalQuery, ApprovalRecord, ApprovalRepository, ApprovalStatus, claimLeaseMs, StoredError } from './approval.repository';
import type { ApprovalDecisionDto, ApprovalListDto, ApprovalListItemDto, ApprovalViewDto, ArgumentsShown } from './approval.dto';
import { hiddenCharactersOf, jsonWithVisibleEscapes, showHiddenIn } from '../core/visible-text';
import { roleMappedAgent } from '../auth/oauth/oauth-identity';

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

/** In a listing, a string longer than this (UTF-8 bytes) is shown as its size only. */
const LISTED_STRING_MAX_BYTES = 1024;
/** In a listing, arguments whose JSON is still longer than this are omitted. */
const LISTED_ARGUMENTS_MAX_BYTES = 8192;
const PURGE_EVERY_MS = 60 * 60 * 1000;
/** How often each instance looks for approvals past their expiry or lease (another instance may have died holding one). */
const EXPIRE_EVERY_MS = 5_000;

/** Who is looking: the approver sees what will run; the agent that asked and listings see it redacted. */
type Audience = 'approver' | 'agent' | 'listing';

/** The arguments of a stored call, exactly as they will be (or were) executed. */
function storedArguments(record: ApprovalRecord): Record<string, unknown> {
  return (JSON.parse(record.envelope) as ToolCallEnvelope).arguments;
}

/**
 * The proof of what ran (arguments_sha256, in the approval views and the audit record): hex SHA-256 of the UTF-8 bytes of JSON.stringify(arguments),
 * compact, keys in the stored order. The approver's detail view serves `arguments` as that same JSON.
 */
export function argumentsDigest(args: unknown): { bytes: number; sha256: string } {
  const json = JSON.stringify(args);
  return { bytes: Buffer.byteLength(json), sha256: sha256Hex(json) };
}

/**
 * Calls that wait for a human: stored with their verified envelope, claimed once by an
 * allowed approver's decision, and settled once: pending again after an outage, failed, or
 * executed with its result. Re-checking and running an approved call is the ToolCallPipeline's
 * (the same stages as a direct call); this service keeps the approval's state and views.
 */
@Injectable()
export class ApprovalService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ApprovalService.name);
  private purgeTimer?: NodeJS.Timeout;
  private expireTimer?: NodeJS.Timeout;

  constructor(
    private readonly config: GatewayConfig,
    private readonly repository: ApprovalRepository,
    private readonly redactor: Redactor,
    metrics: GatewayMetrics,
    private readonly webhook: ApprovalWebhook,
  ) {
    // A store outage must not take /metrics down with it: the count is unknown (NaN) meanwhile.
    metrics.countPendingWith(() => this.repository.countPending(Date.now()).catch(() => NaN));
  }

  /** A call approved before a crash has an unknown outcome: show it as failed, never re-run it. */
  async onApplicationBootstrap(): Promise<void> {
    const interrupted = await this.repository.failInterrupted();
    if (interrupted > 0)
      this.logger.warn(`${interrupted} approved call(s) were interrupted by a stop before their outcome was stored; marked failed (reason_code interrupted)`);
    await this.purge();
    this.purgeTimer = setInterval(
      () => this.purge().catch((err: NodeJS.ErrnoException) => this.logger.error({ err_name: err.name, err_code: err.code }, 'Purging old approvals failed')),
      PURGE_EVERY_MS,
    );
    this.purgeTimer.unref();
    // A store outage is /readyz's to report; the next tick tries again.
    this.expireTimer = setInterval(() => this.repository.expire(Date.now()).catch(() => undefined), EXPIRE_EVERY_MS);
    this.expireTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.purgeTimer);
    clearInterval(this.expireTimer);
  }

  /** Decided and expired approvals older than settings.approval_retention_s are deleted (the audit log keeps their records). */
  private async purge(): Promise<void> {
    const now = Date.now();
    await this.repository.expire(now);
    const purged = await this.repository.purge(now - this.config.settings.approval_retention_s * 1000);
    if (purged > 0) this.logger.log(`Purged ${purged} approval(s) decided or expired more than approval_retention_s ago`);
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
      throw new TooManyPending(max);
    }
    this.webhook.announce(record);
    return {
      ...record,
      status: 'pending',
      decided_by: null,
      decided_at: null,
      comment: null,
      result: null,
      error: null,
      claimed_by: null,
      claimed_at: null,
      lease_until: null,
    };
  }

  /** Newest first, only the tools this approver may decide. */
  async list(approver: Approver, query: Omit<ApprovalQuery, 'tools'>): Promise<ApprovalListDto> {
    const now = Date.now();
    await this.repository.expire(now);
    const page = await this.repository.list({ ...query, tools: approver.tools });
    return { approvals: page.records.map((r) => this.view(r, now, 'listing')), next_cursor: page.nextCursor ?? null };
  }

  /**
   * For an approver who may decide it: exactly what will run. For the agent that asked: redacted
   * (it knows what it sent, and checks it against arguments_sha256). Anyone else: 404, so ids reveal nothing.
   */
  async get(id: string, caller: RequestContext): Promise<ApprovalViewDto> {
    const record = await this.repository.get(id);
    if (!record || (!caller.approver && record.agent_id !== caller.agent?.id)) throw new NotFound('No such approval');
    if (caller.approver) assertMayDecide(caller.approver, record.tool);
    const view = this.view(record, Date.now(), caller.approver ? 'approver' : 'agent');
    return { ...view, ...(record.result !== null && { result: this.redactor.redact(JSON.parse(record.result)) }) };
  }

  /**
   * Claims a pending approval for this approver's decision: the record as decided
   * (approved and claimed by this instance, or rejected). 404, 403 approver_not_allowed_for_tool,
   * 410 expired or 409 already_decided otherwise; nothing is on record yet.
   */
  async claim(approver: Approver, decision: ApprovalDecisionDto): Promise<ApprovalRecord> {
    const record = await this.repository.get(decision.approval_id);
    if (!record) throw new NotFound('No such approval');
    assertMayDecide(approver, record.tool);
    const now = Date.now();
    const leaseUntil = now + claimLeaseMs(this.config.tools.get(record.tool)?.timeout_ms ?? 0);
    const claimed = await this.repository.decide(record.id, {
      approverId: approver.id,
      approved: decision.approved,
      comment: decision.comment ?? null,
      now,
      leaseUntil,
    });
    if (claimed) return claimed;
    const current = await this.repository.get(record.id);
    if (!current) throw new NotFound('No such approval');
    if (current.status === 'expired' || (current.status === 'pending' && current.expires_at <= now)) {
      await this.repository.expire(now);
      throw new ApprovalExpired();
    }
    throw new AlreadyDecided(current.status);
  }

  /** The audit_id of the call that filed this approval, for the agent that asked (404 otherwise). */
  async filedBy(id: string, caller: RequestContext): Promise<string> {
    const record = await this.repository.get(id);
    if (!record || caller.agent === undefined || record.agent_id !== caller.agent.id) throw new NotFound('No such approval');
    return record.audit_id;
  }

  /**
   * The agent that asked takes a pending approval back (an MCP task it cancelled): withdrawn, and no
   * approver can decide it any more (409 already_decided). Another agent's id: 404; an approval
   * already decided: 409 already_decided; past its expiry: 410 expired.
   */
  async withdraw(id: string, caller: RequestContext): Promise<ApprovalRecord> {
    const agentId = caller.agent?.id;
    const record = await this.repository.get(id);
    if (!record || agentId === undefined || record.agent_id !== agentId) throw new NotFound('No such approval');
    const now = Date.now();
    const withdrawn = await this.repository.withdraw(id, agentId, now);
    if (withdrawn) return withdrawn;
    const current = await this.repository.get(id);
    if (!current) throw new NotFound('No such approval');
    if (current.status === 'expired' || (current.status === 'pending' && current.expires_at <= now)) throw new ApprovalExpired();
    throw new AlreadyDecided(current.status);
  }

  /** The approver's decision as its `approval` record shows it: the stored call and the exact arguments that will run. */
  decisionOn(record: ApprovalRecord): ApproverDecision {
    const args = storedArguments(record);
    return {
      approvalId: record.id,
      approved: record.status === 'approved',
      call: { request_id: record.request_id, agent_id: record.agent_id, agent_version: record.agent_version, role: record.role, tool: record.tool },
      arguments: args,
      argumentsSha256: argumentsDigest(args).sha256,
    };
  }

  /** Nothing ran and the decision is not on record (or the call could not be re-checked for an outage): pending again, to be decided once it is over. */
  async undecide(record: ApprovalRecord): Promise<void> {
    await this.repository.undecide(record.id);
  }

  /** The stored call, exactly as asked (409 envelope_mismatch otherwise), and its agent, still configured (403 unknown_agent otherwise). */
  storedCall(record: ApprovalRecord): { agent: Agent; envelope: ToolCallEnvelope } {
    if (sha256Hex(record.envelope) !== record.envelope_sha256) throw new EnvelopeMismatch();
    const agent = this.config.agents.get(record.agent_id) ?? roleMappedAgent(this.config, record.agent_id, record.role);
    if (!agent) throw new PolicyDenied('unknown_agent', 'The agent that asked is no longer configured');
    return { agent, envelope: JSON.parse(record.envelope) as ToolCallEnvelope };
  }

  /** Just before the tool runs, the claim is extended to cover the run; if it lapsed meanwhile (another instance marked it failed), 409 claim_lapsed and nothing runs. */
  async renewClaim(record: ApprovalRecord, tool: Tool): Promise<void> {
    if (!(await this.repository.renewClaim(record.id, Date.now() + claimLeaseMs(tool.timeout_ms)))) throw new ClaimLapsed();
  }

  /** Nothing ran. An outage (503: the policy engine, a store) leaves the approval pending, to be approved again once it is over; a refusal is final (failed). */
  async notRun(record: ApprovalRecord, err: unknown): Promise<void> {
    if (err instanceof GatewayError && err.httpStatus === 503) await this.repository.undecide(record.id);
    else await this.repository.complete(record.id, { error: storedError(err) });
  }

  /**
   * Stores what the approved call did: its result, or the error it failed with. False when the
   * store refused it. The call ran (or tried to), so it must never read as "nothing ran", nor run
   * again: it stays approved, and the lease rule marks it failed (interrupted) later.
   */
  async storeOutcome(record: ApprovalRecord, outcome: { result: Record<string, unknown> } | { error: unknown }): Promise<boolean> {
    try {
      await this.repository.complete(record.id, 'result' in outcome ? outcome : { error: storedError(outcome.error) });
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).name;
      this.logger.error(
        `Approval ${record.id} (tool ${record.tool}) ran, but its outcome could not be stored (${code}); it stays approved until its claim lapses, then reads failed (interrupted)`,
      );
      return false;
    }
  }

  /** What approvers and agents see. The gateway's own ids and times are shown as they are (an id is
   * not personal data, and a redacted one could not be approved); what the agent and the tool
   * supplied is redacted, except the arguments in the approver's own view. */
  private view(r: ApprovalRecord, now: number, audience: Audience): ApprovalListItemDto {
    const args = storedArguments(r);
    const digest = argumentsDigest(args);
    return {
      approval_id: r.id,
      status: r.status === 'pending' && r.expires_at <= now ? 'expired' : r.status,
      agent_id: r.agent_id,
      agent_version: r.agent_version,
      role: r.role,
      tool: r.tool,
      ...this.shownArguments(args, audience),
      hidden_characters: hiddenCharactersOf(args),
      arguments_bytes: digest.bytes,
      arguments_sha256: digest.sha256,
      request_id: r.request_id,
      created_at: iso(r.created_at),
      expires_at: iso(r.expires_at),
      decided_by: r.decided_by,
      decided_at: isoOrNull(r.decided_at),
      comment: r.comment === null ? null : this.redactor.redactString(r.comment),
      ...(r.error !== null && { error: this.redactor.redact(JSON.parse(r.error)) }),
    };
  }

  private shownArguments(
    args: Record<string, unknown>,
    audience: Audience,
  ): { arguments: Record<string, unknown> | null; arguments_shown: ArgumentsShown; arguments_json?: string } {
    if (audience === 'approver') return { arguments: args, arguments_shown: 'exact', arguments_json: jsonWithVisibleEscapes(args) };
    if (audience === 'agent') return { arguments: this.redactor.redact(args), arguments_shown: 'redacted' };
    // Summarized before redaction, so a long text is never scanned, and a summary under a sensitive key is still hidden.
    const summary = { summarized: false };
    const listed = showHiddenIn(this.redactor.redact(summarizeLongStrings(args, summary)));
    if (Buffer.byteLength(JSON.stringify(listed)) > LISTED_ARGUMENTS_MAX_BYTES) return { arguments: null, arguments_shown: 'omitted' };
    return { arguments: listed, arguments_shown: summary.summarized ? 'summarized' : 'redacted' };
  }
}

function assertMayDecide(approver: Approver, tool: string): void {
  if (approver.tools && !approver.tools.includes(tool)) {
    throw new PolicyDenied('approver_not_allowed_for_tool', `Approver "${approver.id}" may not decide on tool "${tool}"`);
  }
}

/** A copy with every string over LISTED_STRING_MAX_BYTES replaced by its size; deeper than the redactor goes, left to it. */
function summarizeLongStrings<T>(value: T, summary: { summarized: boolean }): T {
  return mapJson(value, {
    string: (text) => {
      const bytes = Buffer.byteLength(text);
      if (bytes <= LISTED_STRING_MAX_BYTES) return text;
      summary.summarized = true;
      return `[summarized: ${bytes} bytes]`;
    },
  });
}

function storedError(err: unknown): StoredError {
  const error = err instanceof GatewayError ? err : new InternalError();
  return { http_status: error.httpStatus, status: error.status, reason_code: error.reasonCode, error: error.message };
}

export function parseStatusFilter(value: string | undefined): ApprovalStatus | undefined {
  if (value === undefined || value === '') return undefined;
  const status = APPROVAL_STATUSES.find((s) => s === value);
  if (!status) throw new InvalidRequest('invalid_query', `status must be one of ${APPROVAL_STATUSES.join(', ')}`);
  return status;
}
