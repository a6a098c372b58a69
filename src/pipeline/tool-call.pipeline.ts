import { Injectable } from '@nestjs/common';
import { ApprovalService } from '../approval/approval.service';
import { AuditUnavailable } from '../audit/audit-log.service';
import { Redactor } from '../redaction/redactor';
import { RequestAudit } from '../audit/request-audit';
import { Idempotency, StoredReplay } from '../auth/idempotency.service';
import { ErrorBody, errorBody, toGatewayError } from './error-body';
import { GatewayError } from '../core/errors';
import type { RequestContext } from '../context/request-context';
import { ExecutorService } from '../executor/executor.service';
import { PolicyService } from '../policy/policy.service';
import { AgentLimiter } from '../throttle/agent-limiter';
import type { ToolCallExecutedDto, ToolCallPendingDto } from './tool-call.dto';

export type ToolCallBody = ToolCallExecutedDto | ToolCallPendingDto | ErrorBody;

/**
 * A tool the gateway itself answers (MCP's `approval_status`): no policy engine is asked, since it
 * reads only the calling agent's own records, but it is claimed, limited and recorded like any call.
 */
export interface BuiltinTool {
  /** Throws ArgumentsInvalid (row 11). */
  validate(args: Record<string, unknown>): void;
  run(ctx: RequestContext): Promise<Record<string, unknown>>;
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

/**
 * One tool call, whichever door it came through (DESIGN "two doors, one pipeline"): limits →
 * replay → policy, schema and tool guard → decision record → approval
 * (pending) or execution → outcome record, and the answer kept for replays. A door proves who is
 * calling and reads the envelope; everything after that happens here, once. It never throws:
 * every refusal is recorded and returned as an answer, and the call's replay key is always settled.
 */
@Injectable()
export class ToolCallPipeline {
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
   * `ctx` carries the verified agent, the envelope, the channel and the origin; `callHash` binds
   * the request_id to this exact call (the REST body's SHA-256, or the MCP call's). No `callHash`:
   * the door named the call itself with a fresh id, which no one can send again, so there is no
   * replay key to take (an MCP call without `_meta` request_id).
   */
  async run(ctx: RequestContext, callHash: string | undefined, builtin?: BuiltinTool): Promise<ToolCallAnswer> {
    let answer: ToolCallAnswer;
    try {
      // Limits first: a replay or a 409 costs the agent like any call, so sending one request
      // again and again is held to the agent's rate like sending new ones.
      await this.limiter.spend(ctx.agent!, ctx.envelope!.tool);
      if (callHash !== undefined) await this.idempotency.claim(ctx, callHash);
      ctx.decision = await this.decide(ctx, builtin);
      await this.audit.recordDecision(ctx);
      const body = builtin ? executed(ctx, await builtin.run(ctx)) : await this.perform(ctx);
      answer = { httpStatus: body.status === 'pending_approval' ? 202 : 200, body };
      await this.audit.recordSuccess(ctx, answer.httpStatus, body);
    } catch (err) {
      if (err instanceof StoredReplay) return this.replay(ctx, err);
      answer = await this.refuse(ctx, err);
    }
    await this.idempotency.settle(ctx, answer.httpStatus, answer.body);
    return answer;
  }

  /** Rows 7–12: the policy engine, the schema and the tool's own guard (a built-in tool: its schema). */
  private async decide(ctx: RequestContext, builtin: BuiltinTool | undefined): Promise<RequestContext['decision']> {
    try {
      if (!builtin) return await this.policy.evaluate(ctx.agent!, ctx.envelope!);
      builtin.validate(ctx.envelope!.arguments);
      return { requiresApproval: false };
    } catch (err) {
      // A refusal here is the call's `deny` decision; an engine outage (503) is not a decision.
      ctx.deniedByPolicy = err instanceof GatewayError && err.httpStatus < 500;
      throw err;
    }
  }

  /** Rows 13–14: wait for a human, or run now. */
  private async perform(ctx: RequestContext): Promise<ToolCallExecutedDto | ToolCallPendingDto> {
    const { agent, envelope, decision, auditId } = ctx as Required<RequestContext>;
    if (decision.requiresApproval) {
      const approval = await this.approvals.submit(agent, envelope, auditId);
      ctx.mayHaveRun = true;
      return {
        success: false,
        status: 'pending_approval',
        approval_id: approval.id,
        expires_at: new Date(approval.expires_at).toISOString(),
        error: 'Human approval required',
        audit_id: auditId,
        request_id: envelope.request_id,
      };
    }
    ctx.mayHaveRun = true;
    return executed(ctx, await this.executor.execute(decision.tool!, envelope.arguments));
  }

  /**
   * A refusal on record, as the error body of API.md §4; one that cannot be recorded is 503. Doors
   * use it too, for a call they refuse before it enters the pipeline (a malformed MCP request_id).
   */
  async refuse(ctx: RequestContext, err: unknown): Promise<ToolCallAnswer> {
    const error = await this.audit.recordRefusal(ctx, toGatewayError(err, ctx));
    return { httpStatus: error.httpStatus, body: errorBody(error, ctx.auditId, ctx.envelope?.request_id, this.redactor), headers: error.headers };
  }

  private async replay(ctx: RequestContext, replay: StoredReplay): Promise<ToolCallAnswer> {
    try {
      await this.audit.recordReplay(ctx, replay.status);
    } catch {
      return this.refuse(ctx, new AuditUnavailable());
    }
    return { httpStatus: replay.status, body: replay.body as ToolCallBody, replayed: true };
  }
}

export function executed(ctx: RequestContext, result: Record<string, unknown>): ToolCallExecutedDto {
  return { success: true, status: 'executed', result, audit_id: ctx.auditId, request_id: ctx.envelope!.request_id };
}
