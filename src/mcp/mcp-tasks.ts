import { Injectable } from '@nestjs/common';
import {
  ProtocolError,
  ProtocolErrorCode,
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
import { approvalEnded, approvalEndedText, type McpShape, toCallToolResult } from './call-tool-result';

/**
 * Pending approvals as MCP tasks (README "Connect an MCP client", tasks), protocol revision 2025-11-25:
 * a client that sends `tools/call` with `params.task` for a tool that advertises
 * `execution.taskSupport: "optional"` gets, when the call waits for a human, a task instead of
 * the pending_approval result. The gateway keeps no task state: a task IS its approval, and the
 * task id is the approval id (random, 122 bits), so `tasks/get`, `tasks/result` and `tasks/cancel`
 * read and change the approval, always as the agent of the request (another agent: not found).
 *
 * The 2026-07-28 tasks extension (`resultType: "task"`) is not served: the SDK's 2026 client rejects
 * that result type, and the 2026 codec strips task support from tool listings.
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
  ) {}

  /** tasks/get, tasks/result and tasks/cancel on this request's server, for this agent. */
  register(server: Server, ctx: AgentRequest): void {
    server.setRequestHandler('tasks/get', { params: taskIdParams }, ({ taskId }) => answered(async () => this.taskOf(await this.find(taskId, ctx))));
    server.setRequestHandler('tasks/result', { params: taskIdParams }, ({ taskId }) =>
      answered(async () => this.resultOf(await this.find(taskId, ctx), await this.approvals.filedBy(taskId, ctx))),
    );
    server.setRequestHandler('tasks/cancel', { params: taskIdParams }, ({ taskId }) => answered(() => this.cancel(taskId, ctx)));
  }

  /**
   * The answer to a task-augmented call that waits for a human: the task (CreateTaskResult). It also
   * carries a `content` line, which the SDK's tools/call result check requires of any tools/call
   * answer; task-aware clients read `task`.
   */
  async created(pending: ToolCallPendingDto, ctx: AgentRequest): Promise<CallToolResult> {
    const task = await answered(async () => this.taskOf(await this.find(pending.approval_id, ctx)));
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

  /** The tool's result once executed; the rejection, expiry or failure as an isError result; nothing yet while it waits. */
  private resultOf(view: ApprovalViewDto, auditId: string): CallToolResult {
    // The ids of the call that asked, as its pending answer named them.
    const ids = { audit_id: auditId, request_id: view.request_id };
    // The same shape the call would have had answered at once: an upstream MCP tool's own content.
    const shape: McpShape = { resultOf: (result) => this.registry.mcpResultOf(view.tool, result), hasOutputSchema: this.registry.hasOutputSchema(view.tool) };
    if (view.status === 'pending' || view.status === 'approved') {
      throw new ProtocolError(
        ProtocolErrorCode.InvalidParams,
        `Task ${view.approval_id} has no result yet (${this.taskOf(view).statusMessage}); poll tasks/get`,
      );
    }
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
 * The SDK sends a handler's error message to the client as it is: only the gateway's own words
 * leave (a store's error may name a user, a table or a host), anything else as "Internal error".
 */
async function answered<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    if (err instanceof GatewayError) throw new ProtocolError(ProtocolErrorCode.InternalError, err.message);
    throw new ProtocolError(ProtocolErrorCode.InternalError, 'Internal error');
  }
}
