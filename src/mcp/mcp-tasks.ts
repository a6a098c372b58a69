import { Injectable } from '@nestjs/common';
import {
  ProtocolError,
  ProtocolErrorCode,
  RELATED_TASK_META_KEY,
  type CallToolRequest,
  type CallToolResult,
  type Server,
  type ServerCapabilities,
  type ServerContext,
  type StandardSchemaV1,
  type Task,
} from '@modelcontextprotocol/server';
import { AuditLog } from '../audit/audit-log.service';
import { GatewayConfig } from '../config/gateway-config';
import { AgentRequest, newAuditId } from '../context/request-context';
import { GatewayError } from '../core/errors';
import { argumentsDigest, ApprovalService } from '../approval/approval.service';
import type { ApprovalViewDto } from '../approval/approval.dto';
import type { ToolCallPendingDto } from '../pipeline/tool-call.dto';
import { ToolRegistry } from '../registry/tool-registry';
import { ApprovalWaiters, undecided, untilEnded } from './approval-waiters';
import { approvalEnded, approvalEndedText, type McpShape, toCallToolResult } from './call-tool-result';

/**
 * Pending approvals as MCP tasks (README "Connect an MCP client", tasks), protocol revision 2025-11-25:
 * a client that sends `tools/call` with `params.task` for a tool that advertises
 * `execution.taskSupport: "optional"` gets, when the call waits for a human, a task instead of
 * the pending_approval result. The gateway keeps no task state: a task IS its approval, and the
 * task id is the approval id (random, 122 bits), so `tasks/get`, `tasks/result` and `tasks/cancel`
 * read and change the approval, always as the agent of the request (another agent: not found).
 * `tasks/result` of a task still working waits for the human like a tools/call with a progressToken:
 * up to settings.mcp.approval_wait_s, within the same caps on waiting requests.
 *
 * The 2026-07-28 tasks extension (`io.modelcontextprotocol/tasks`) is not served, because the
 * official SDK cannot carry it: its 2026 client refuses a `tools/call` answer whose `resultType` is
 * "task" (UNSUPPORTED_RESULT_TYPE) before any schema sees it, and its 2026 codec strips task
 * support from tool listings and capabilities. A 2026-07-28 client therefore gets the
 * pending_approval answer and the approval_status tool, and `tasks/get` / `tasks/cancel` on that
 * revision are "Method not found".
 */
export const TASK_CAPABILITIES: Pick<ServerCapabilities, 'tasks'> = { tasks: { cancel: {}, requests: { tools: { call: {} } } } };

/** What an agent is told to wait between two tasks/get. */
const POLL_INTERVAL_MS = 2000;

/** The `execution` a tool advertises in tools/list when a call of it may wait for a human. */
export function taskExecution(requiresApproval: boolean): { execution?: { taskSupport: 'optional' } } {
  return requiresApproval ? { execution: { taskSupport: 'optional' } } : {};
}

/**
 * Whether the client asked for this call to run as a task: 2025-11-25 `params.task`. A 2026-07-28
 * request (it carries the per-request `_meta` envelope) never is: that revision has no `params.task`.
 */
export function isTaskAugmented(request: CallToolRequest, sctx: ServerContext): boolean {
  if (sctx.mcpReq.envelope !== undefined) return false;
  const task = (request.params as { task?: unknown }).task;
  return typeof task === 'object' && task !== null;
}

/** `{ taskId }`, the params of tasks/get, tasks/result and tasks/cancel, as a Standard Schema (no schema library needed). */
const taskIdParams: StandardSchemaV1<unknown, { taskId: string }> = {
  '~standard': {
    version: 1,
    vendor: 'agent-gateway',
    validate: (value) => {
      const taskId = (value as { taskId?: unknown } | null)?.taskId;
      if (typeof taskId === 'string' && taskId.length > 0 && taskId.length <= 128) return { value: { taskId } };
      return { issues: [{ message: 'taskId must be a string of 1 to 128 characters' }] };
    },
  },
};

@Injectable()
export class McpTasks {
  constructor(
    private readonly config: GatewayConfig,
    private readonly approvals: ApprovalService,
    private readonly audit: AuditLog,
    private readonly registry: ToolRegistry,
    private readonly waiters: ApprovalWaiters,
  ) {}

  /** tasks/get, tasks/result and tasks/cancel on this request's server, for this agent (2025-11-25 only). */
  register(server: Server, ctx: AgentRequest): void {
    server.setRequestHandler('tasks/get', { params: taskIdParams }, ({ taskId }, sctx) =>
      answered(sctx, async () => this.taskOf(await this.find(taskId, ctx))),
    );
    server.setRequestHandler('tasks/result', { params: taskIdParams }, ({ taskId }, sctx) =>
      answered(sctx, () => this.result(taskId, ctx, sctx.mcpReq.signal)),
    );
    server.setRequestHandler('tasks/cancel', { params: taskIdParams }, ({ taskId }, sctx) => answered(sctx, () => this.cancel(taskId, ctx)));
  }

  /**
   * The answer to a task-augmented call that waits for a human: the task (CreateTaskResult). It also
   * carries a `content` line, which the SDK's tools/call result check requires of any tools/call
   * answer; task-aware clients read `task`.
   */
  async created(pending: ToolCallPendingDto, ctx: AgentRequest): Promise<CallToolResult> {
    const task = await safely(async () => this.taskOf(await this.find(pending.approval_id, ctx)));
    return { content: [{ type: 'text', text: task.statusMessage ?? '' }], task };
  }

  private async find(taskId: string, ctx: AgentRequest): Promise<ApprovalViewDto> {
    try {
      return await this.approvals.get(taskId, ctx);
    } catch (err) {
      if (err instanceof GatewayError && err.httpStatus === 404) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Task not found');
      throw err;
    }
  }

  /** The approval as a 2025-11-25 Task: pending or running → working; executed → completed; withdrawn → cancelled; else failed. */
  private taskOf(view: ApprovalViewDto): Task {
    const created = Date.parse(view.created_at);
    const common = {
      taskId: view.approval_id,
      createdAt: view.created_at,
      lastUpdatedAt: view.decided_at ?? view.created_at,
      // Kept until it expires, then for approval_retention_s after it is decided or expired.
      ttl: Date.parse(view.expires_at) - created + this.config.settings.approval_retention_s * 1000,
      pollInterval: POLL_INTERVAL_MS,
    };
    switch (view.status) {
      case 'pending':
        return { ...common, status: 'working', statusMessage: `waits for a human approver (approval_id ${view.approval_id}, until ${view.expires_at})` };
      case 'approved':
        return { ...common, status: 'working', statusMessage: `approved by ${view.decided_by}; running` };
      case 'executed':
        return { ...common, status: 'completed', statusMessage: `approved by ${view.decided_by} and executed` };
      case 'withdrawn':
        return { ...common, status: 'cancelled', statusMessage: 'withdrawn by the agent before anyone decided; the call did not run' };
      default:
        return { ...common, status: 'failed', statusMessage: approvalEndedText(view) };
    }
  }

  /**
   * tasks/result: the call's result once the task has ended. While it still waits for a human, the
   * answer waits too (the protocol's rule), for up to approval_wait_s and only within the caps on
   * waiting requests; past that, an error that says to ask again.
   */
  private async result(taskId: string, ctx: AgentRequest, signal: AbortSignal): Promise<CallToolResult> {
    let view = await this.find(taskId, ctx);
    if (undecided(view)) view = await this.waitForEnd(view, ctx, signal);
    const result = this.resultOf(view, await this.approvals.filedBy(taskId, ctx));
    return { ...result, _meta: { ...result._meta, [RELATED_TASK_META_KEY]: { taskId } } };
  }

  private async waitForEnd(view: ApprovalViewDto, ctx: AgentRequest, signal: AbortSignal): Promise<ApprovalViewDto> {
    const settings = this.config.settings.mcp;
    const leave = settings.approval_wait_s > 0 ? this.waiters.enter(ctx.agent.id, settings) : undefined;
    let last = view;
    if (leave) {
      try {
        const deadline = Date.now() + settings.approval_wait_s * 1000;
        last = (await untilEnded(() => this.approvals.get(view.approval_id, ctx), deadline, signal)) ?? view;
      } finally {
        leave();
      }
      if (!undecided(last)) return last;
    }
    const why = settings.approval_wait_s === 0 ? '' : leave ? ` after waiting ${settings.approval_wait_s} s` : ' and too many requests wait for a human now';
    throw new ProtocolError(
      ProtocolErrorCode.InvalidParams,
      `Task ${view.approval_id} has no result yet (${this.taskOf(last).statusMessage})${why}; call tasks/result again later or poll tasks/get`,
    );
  }

  /** The tool's result once executed; the rejection, expiry or failure as an isError result. */
  private resultOf(view: ApprovalViewDto, auditId: string): CallToolResult {
    // The ids of the call that asked, as its pending answer named them.
    const ids = { audit_id: auditId, request_id: view.request_id };
    // The same shape the call would have had answered at once: an upstream MCP tool's own content.
    const shape: McpShape = { resultOf: (result) => this.registry.mcpResultOf(view.tool, result), hasOutputSchema: this.registry.hasOutputSchema(view.tool) };
    if (view.status === 'executed')
      return toCallToolResult({ success: true, status: 'executed', result: view.result as Record<string, unknown>, ...ids }, shape);
    return toCallToolResult({ success: false, ...approvalEnded(view), ...ids }, shape);
  }

  /**
   * tasks/cancel: the agent withdraws its pending approval. Recorded (`approval` event, status
   * withdrawn) once the store holds it; when it cannot be recorded, the approval is pending again and
   * the client gets an error. A task already decided or expired cannot be cancelled.
   */
  private async cancel(taskId: string, ctx: AgentRequest): Promise<Task> {
    await this.find(taskId, ctx);
    let record;
    try {
      record = await this.approvals.withdraw(taskId, ctx);
    } catch (err) {
      if (err instanceof GatewayError && err.httpStatus < 500)
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Cannot cancel task ${taskId}: ${err.message}`);
      throw err;
    }
    const args = (JSON.parse(record.envelope) as { arguments: unknown }).arguments;
    try {
      await this.audit.append({
        audit_id: newAuditId(),
        event: 'approval',
        status: 'withdrawn',
        approval_id: record.id,
        request_id: record.request_id,
        agent_id: record.agent_id,
        agent_version: record.agent_version,
        role: record.role,
        tool: record.tool,
        arguments_sha256: argumentsDigest(args).sha256,
        channel: 'mcp',
        client: ctx.client,
      });
    } catch {
      await this.approvals.undecide(record);
      throw new ProtocolError(ProtocolErrorCode.InternalError, 'The audit log is unavailable: the approval was not withdrawn; try again');
    }
    return this.taskOf(await this.approvals.get(taskId, ctx));
  }
}

/**
 * A task method's answer on 2025-11-25; on 2026-07-28, where the tasks extension is not served,
 * "Method not found" (README "Connect an MCP client").
 */
function answered<T>(sctx: ServerContext, work: () => Promise<T>): Promise<T> {
  if (sctx.mcpReq.envelope !== undefined) return Promise.reject(new ProtocolError(ProtocolErrorCode.MethodNotFound, 'Method not found'));
  return safely(work);
}

/**
 * The SDK sends a handler's error message to the client as it is: only the gateway's own words
 * leave (a store's error may name a user, a table or a host), anything else as "Internal error".
 */
async function safely<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    if (err instanceof GatewayError) throw new ProtocolError(ProtocolErrorCode.InternalError, err.message);
    throw new ProtocolError(ProtocolErrorCode.InternalError, 'Internal error');
  }
}
