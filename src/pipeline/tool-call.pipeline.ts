import { Injectable } from '@nestjs/common';
import { OutcomeNotStored } from '../approval/approval-errors';
import type { ApprovalDecisionResultDto } from '../approval/approval.dto';
import type { ApprovalRecord } from '../approval/approval.repository';
import { ApprovalService } from '../approval/approval.service';
import { AuditUnavailable } from '../audit/audit-log.service';
import { Answered, RequestAudit } from '../audit/request-audit';
import { Idempotency, StoredReplay } from '../auth/idempotency.service';
import type { Agent, Tool } from '../config/gateway-config';
import type { Allowed, ApproverDecision, BuiltinAllowed, DecidedCall, Denied, ToolAllowed } from '../context/call-stages';
import type { ApproverRequest, AuthenticatedCall, RequestContext, ToolCallEnvelope } from '../context/request-context';
import { GatewayError } from '../core/errors';
import { type CallObserver, ExecutorService } from '../executor/executor.service';
import { PolicyService } from '../policy/policy.service';
import { Redactor } from '../redaction/redactor';
import { annotateAnswer, annotateCall, tracingOn, traceStage, traceToolCall } from '../telemetry/tracing';
import { AgentLimiter } from '../throttle/agent-limiter';
import { ErrorBody, errorBody, toGatewayError } from './error-body';
import type { ToolCallExecutedDto, ToolCallPendingDto } from './tool-call.dto';

export type ToolCallBody = ToolCallExecutedDto | ToolCallPendingDto | ErrorBody;

/**
 * A tool the gateway itself answers (MCP's `approval_status`): no policy engine is asked, since it
 * reads only the calling agent's own records, but it is claimed, limited and recorded like any call.
 */
export interface BuiltinTool {
  /** Throws ArgumentsInvalid (row 11). */
  validate(args: Record<string, unknown>): void;
  run(call: AuthenticatedCall): Promise<Record<string, unknown>>;
}

/** What a door sends back, in its own shape: REST as status and body, MCP as a CallToolResult. */
export interface ToolCallAnswer {
  httpStatus: number;
  body: ToolCallBody;
  /** The first answer to this (agent_id, request_id), sent again: nothing ran this time. */
  replayed?: boolean;
  /** Headers of a refusal, such as `Retry-After` (REST sends them; MCP has nowhere to). */
  headers?: Readonly<Record<string, string>>;
}

/** The answer to an approver's decision (POST /approve): executed, rejected, or the refusal. */
export interface ApprovalAnswer {
  httpStatus: number;
  body: ApprovalDecisionResultDto | ErrorBody;
  headers?: Readonly<Record<string, string>>;
}

/** A refusal, in any door's answer. */
export interface RefusalAnswer {
  httpStatus: number;
  body: ErrorBody;
  headers?: Readonly<Record<string, string>>;
}

/** What the perform stage produced. `mayHaveRun`: a tool was started or an approval filed. */
type Outcome =
  | { kind: 'executed'; result: Record<string, unknown>; mayHaveRun: boolean }
  | { kind: 'pending'; approval: ApprovalRecord; mayHaveRun: true }
  | { kind: 'failed'; error: unknown; mayHaveRun: boolean };
/** What running a tool produced: it was started, whatever happened next. */
type Ran = { kind: 'executed'; result: Record<string, unknown>; mayHaveRun: true } | { kind: 'failed'; error: unknown; mayHaveRun: true };

/** How a call is decided and performed: by the policy and the tool's kind, or by a built-in tool. */
interface CallStages<D extends Allowed> {
  decide(call: AuthenticatedCall): Promise<D | Denied>;
  perform(call: AuthenticatedCall, decision: D, observer?: CallObserver): Promise<Outcome>;
}

/** An answer, and whether the call may have run (so even a 429 or 5xx is kept for replays). */
interface Settled {
  answer: ToolCallAnswer;
  mayHaveRun: boolean;
}

/**
 * One tool call, whichever door it came through: limits →
 * replay → decide (policy, schema and tool guard) → decision record → perform (approval pending,
 * or execution) → outcome record, and the answer kept for replays. A door proves who is calling and
 * reads the envelope; everything after that happens here, once. Each stage returns what it
 * established, and the records are written from those values. It never throws: every refusal is
 * recorded and returned as an answer, and the call's replay key is always settled.
 *
 * An approver's decision (runApproved) goes through the same stages from the decision on: the
 * policy decides again on the stored call, the tool runs, and the outcome is recorded the same way.
 */
@Injectable()
export class ToolCallPipeline {
  private readonly toolStages: CallStages<ToolAllowed> = {
    decide: (call) => this.decide(call.agent, call.envelope),
    perform: (call, decision, observer) =>
      decision.verdict === 'pending' ? this.fileApproval(call) : this.execute(decision.tool, call.envelope.arguments, observer),
  };

  constructor(
    private readonly idempotency: Idempotency,
    private readonly limiter: AgentLimiter,
    private readonly policy: PolicyService,
    private readonly audit: RequestAudit,
    private readonly approvals: ApprovalService,
    private readonly executor: ExecutorService,
    private readonly redactor: Redactor,
  ) {}

  /**
   * `call` carries the verified agent, the envelope, the channel and the origin; `callHash` binds
   * the request_id to this exact call (the REST body's SHA-256, or the MCP call's). No `callHash`:
   * the door named the call itself with a fresh id, which no one can send again, so there is no
   * replay key to take (an MCP call without `_meta` request_id). `observer`: the door's cancellation
   * signal and progress sink for this call, handed to the tool when it runs (not to an approved
   * call, which runs later for an approver).
   */
  async run(call: AuthenticatedCall, callHash: string | undefined, builtin?: BuiltinTool, observer?: CallObserver): Promise<ToolCallAnswer> {
    const { answer, mayHaveRun } = builtin
      ? await this.runStages(call, callHash, builtinStages(builtin), observer)
      : await this.runStages(call, callHash, this.toolStages, observer);
    await traceStage('replay settle', () => this.idempotency.settle(call, answer.httpStatus, answer.body, mayHaveRun));
    annotateAnswer(call.auditId, answer.httpStatus, answer.body.status, reasonCodeOf(answer.body));
    return answer;
  }

  private async runStages<D extends Allowed>(
    call: AuthenticatedCall,
    callHash: string | undefined,
    stages: CallStages<D>,
    observer: CallObserver | undefined,
  ): Promise<Settled> {
    const nothingRan = (answer: ToolCallAnswer): Settled => ({ answer, mayHaveRun: false });
    let decision: D | Denied;
    try {
      // Limits first: a replay or a 409 costs the agent like any call, so sending one request
      // again and again is held to the agent's rate like sending new ones.
      await traceStage('limit', () => this.limiter.spend(call.agent, call.envelope.tool));
      if (callHash !== undefined) await traceStage('replay', () => this.idempotency.claim(call, callHash), isReplay);
      decision = await traceStage('policy', () => stages.decide(call));
      annotateCall({ 'agent_gateway.decision': decision.verdict });
    } catch (err) {
      if (err instanceof StoredReplay) return nothingRan(await this.replay(call, err));
      return nothingRan(await this.refuse(call, err));
    }
    try {
      await traceStage('audit write', () => this.audit.recordDecision(call, decision));
    } catch (err) {
      // Not on record, so nothing runs. A deny is the call's only record: its failure is the answer.
      if (decision.verdict === 'deny') return nothingRan(this.refusal(call, new AuditUnavailable()));
      return nothingRan(await this.refuse(call, err, decision.verdict));
    }
    if (decision.verdict === 'deny') return nothingRan(this.refusal(call, decision.refusal));
    const outcome = await traceStage(decision.verdict === 'pending' ? 'approval request' : 'execute', () => stages.perform(call, decision, observer));
    const decided: DecidedCall = { by: 'policy', call, decision, mayHaveRun: outcome.mayHaveRun };
    const answer: ToolCallAnswer =
      outcome.kind === 'failed'
        ? await this.recordOutcome(decided, { error: outcome.error })
        : outcome.kind === 'pending'
          ? await this.recordOutcome(decided, { httpStatus: 202, body: pending(call, outcome.approval) })
          : await this.recordOutcome(decided, { httpStatus: 200, body: executed(call, outcome.result) });
    return { answer, mayHaveRun: outcome.mayHaveRun };
  }

  /**
   * An approver's decision on an approval it claimed (POST /approve). The decision goes on record
   * before anything runs; if it cannot, nothing runs and the approval is pending again (to be decided
   * once the audit log is back). Approved, the stored call goes through the stages of a direct call:
   * the current policy decides again, the tool runs exactly once, its outcome is stored with the
   * approval and recorded. Nothing ran: an outage leaves it pending, a refusal is final (failed).
   */
  runApproved(request: ApproverRequest, claimed: ApprovalRecord): Promise<ApprovalAnswer> {
    if (!tracingOn()) return this.decideApproval(request, claimed);
    const traced = { channel: 'approval', tool: claimed.tool, agentId: claimed.agent_id, arrivedAt: request.startedAt, owner: request } as const;
    return traceToolCall(traced, async () => {
      const answer = await this.decideApproval(request, claimed);
      annotateAnswer(request.auditId, answer.httpStatus, answer.body.status, reasonCodeOf(answer.body));
      return answer;
    });
  }

  private async decideApproval(request: ApproverRequest, claimed: ApprovalRecord): Promise<ApprovalAnswer> {
    let approval: ApproverDecision;
    try {
      approval = this.approvals.decisionOn(claimed);
      annotateCall({ 'agent_gateway.decision': approval.approved ? 'allow' : 'deny' });
      await traceStage('audit write', () => this.audit.recordApproval(request, approval));
    } catch (err) {
      return this.refuse(
        request,
        await this.approvals.undecide(claimed).then(
          () => err,
          (undecideFailed: unknown) => undecideFailed,
        ),
      );
    }
    const decided: DecidedCall = { by: 'approver', request, approval, mayHaveRun: false };
    const answered = { approval_id: claimed.id, audit_id: request.auditId };
    if (!approval.approved) return this.recordOutcome(decided, { httpStatus: 200, body: { success: false, status: 'rejected', ...answered } });

    let allowed: { tool: Tool; envelope: ToolCallEnvelope };
    try {
      const { agent, envelope } = this.approvals.storedCall(claimed);
      const decision = await traceStage('policy', () => this.decide(agent, envelope));
      if (decision.verdict === 'deny') throw decision.refusal;
      await this.approvals.renewClaim(claimed, decision.tool);
      allowed = { tool: decision.tool, envelope };
    } catch (err) {
      return this.recordOutcome(decided, {
        error: await this.approvals.notRun(claimed, err).then(
          () => err,
          (notStored: unknown) => notStored,
        ),
      });
    }

    const outcome = await traceStage('execute', () => this.execute(allowed.tool, allowed.envelope.arguments));
    const ran: DecidedCall = { ...decided, mayHaveRun: true };
    if (outcome.kind === 'failed') {
      await this.approvals.storeOutcome(claimed, { error: outcome.error });
      return this.recordOutcome(ran, { error: outcome.error });
    }
    if (!(await this.approvals.storeOutcome(claimed, { result: outcome.result }))) return this.recordOutcome(ran, { error: new OutcomeNotStored() });
    return this.recordOutcome(ran, {
      httpStatus: 200,
      body: { success: true, status: 'executed', approval_id: claimed.id, result: outcome.result, audit_id: request.auditId },
    });
  }

  /**
   * A refusal before any decision on the call is on record, as the error body all doors share; one that
   * cannot be recorded is 503. Doors use it too, for a call they refuse before it enters the
   * pipeline (a malformed MCP request_id). `verdict`: the policy's, taken but not on record.
   */
  async refuse(ctx: RequestContext, err: unknown, verdict?: Allowed['verdict']): Promise<RefusalAnswer> {
    return this.refusal(ctx, await traceStage('audit write', () => this.audit.recordRefusal(ctx, toGatewayError(err, ctx), verdict)));
  }

  /** Rows 7–12: the policy engine, the schema and the tool's own guard. An outage (503) or anything unexpected is thrown: not a decision. */
  private async decide(agent: Agent, envelope: ToolCallEnvelope): Promise<ToolAllowed | Denied> {
    try {
      const { tool, requiresApproval } = await this.policy.evaluate(agent, envelope);
      return { verdict: requiresApproval ? 'pending' : 'allow', tool };
    } catch (err) {
      return denial(err);
    }
  }

  /** Row 13: the call waits for a human; once filed, a retry must not file it again. */
  private async fileApproval(call: AuthenticatedCall): Promise<Outcome> {
    try {
      return { kind: 'pending', approval: await this.approvals.submit(call.agent, call.envelope, call.auditId), mayHaveRun: true };
    } catch (error) {
      return { kind: 'failed', error, mayHaveRun: false };
    }
  }

  /** Row 14: the tool runs now; from the moment it starts, whatever happens (a cancellation too), it may have run. */
  private async execute(tool: Tool, args: Record<string, unknown>, observer?: CallObserver): Promise<Ran> {
    try {
      return { kind: 'executed', result: await this.executor.execute(tool, args, observer), mayHaveRun: true };
    } catch (error) {
      return { kind: 'failed', error, mayHaveRun: true };
    }
  }

  /**
   * The outcome record of a decided call, the same for a door's call and an approved one, and the
   * answer: `ended`'s own, or the error body of its failure (outcome_unrecorded when the record
   * cannot be written after the call may have run).
   */
  private async recordOutcome<B extends Answered>(
    decided: DecidedCall,
    ended: { httpStatus: number; body: B } | { error: unknown },
  ): Promise<{ httpStatus: number; body: B } | RefusalAnswer> {
    let failure: unknown;
    if ('body' in ended) {
      try {
        await traceStage('audit write', () => this.audit.recordOutcome(decided, ended.httpStatus, ended.body));
        return ended;
      } catch (err) {
        failure = err;
      }
    } else failure = ended.error;
    const ctx = decided.by === 'policy' ? decided.call : decided.request;
    return this.refusal(ctx, await traceStage('audit write', () => this.audit.recordFailedOutcome(decided, toGatewayError(failure, ctx))));
  }

  /** A refusal on record (or not recordable), as the error body all doors share. */
  private refusal(ctx: RequestContext, error: GatewayError): RefusalAnswer {
    return { httpStatus: error.httpStatus, body: errorBody(error, ctx.auditId, ctx.envelope?.request_id, this.redactor), headers: error.headers };
  }

  private async replay(call: AuthenticatedCall, replay: StoredReplay): Promise<ToolCallAnswer> {
    try {
      await traceStage('audit write', () => this.audit.recordReplay(call, replay.status));
    } catch {
      return this.refuse(call, new AuditUnavailable());
    }
    return { httpStatus: replay.status, body: replay.body as ToolCallBody, replayed: true };
  }
}

/** A built-in tool is decided by its own schema and only reads the gateway's records: it never "may have run". */
function builtinStages(builtin: BuiltinTool): CallStages<BuiltinAllowed> {
  return {
    decide: (call) => {
      try {
        builtin.validate(call.envelope.arguments);
        return Promise.resolve({ verdict: 'allow' });
      } catch (err) {
        return Promise.resolve(denial(err));
      }
    },
    perform: async (call) => {
      try {
        return { kind: 'executed', result: await builtin.run(call), mayHaveRun: false };
      } catch (error) {
        return { kind: 'failed', error, mayHaveRun: false };
      }
    },
  };
}

/** A stored answer sent again is how the replay stage answers, not its failure. */
function isReplay(err: unknown): boolean {
  return err instanceof StoredReplay;
}

/** The reason code of a refusal's body, for the call's span. */
function reasonCodeOf(body: ToolCallBody | ApprovalAnswer['body']): string | undefined {
  return 'reason_code' in body && typeof body.reason_code === 'string' ? body.reason_code : undefined;
}

/** A refusal by the decide stage (4xx) is the call's `deny` decision; anything else is not a decision, and is thrown on. */
function denial(err: unknown): Denied {
  if (err instanceof GatewayError && err.httpStatus < 500) return { verdict: 'deny', refusal: err };
  throw err;
}

export function executed(call: AuthenticatedCall, result: Record<string, unknown>): ToolCallExecutedDto {
  return { success: true, status: 'executed', result, audit_id: call.auditId, request_id: call.envelope.request_id };
}

function pending(call: AuthenticatedCall, approval: ApprovalRecord): ToolCallPendingDto {
  return {
    success: false,
    status: 'pending_approval',
    approval_id: approval.id,
    expires_at: new Date(approval.expires_at).toISOString(),
    error: 'Human approval required',
    audit_id: call.auditId,
    request_id: call.envelope.request_id,
  };
}
