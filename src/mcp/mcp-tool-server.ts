import { Injectable } from '@nestjs/common';
import {
  CLIENT_INFO_META_KEY,
  Server,
  TRACEPARENT_META_KEY,
  TRACESTATE_META_KEY,
  type CallToolRequest,
  type CallToolResult,
  type McpRequestContext,
  type ServerContext,
  type ServerNotification,
  type RequestMeta,
  type Tool as McpTool,
} from '@modelcontextprotocol/server';
import { ApprovalService } from '../approval/approval.service';
import { sha256Hex } from '../core/hashing';
import { ArgumentsInvalid } from '../core/errors';
import { schemaValidator } from '../core/json-schema.pipe';
import { AgentRequest, AuthenticatedCall, Established, established, RequestContext } from '../context/request-context';
import { GatewayConfig } from '../config/gateway-config';
import { ToolRegistry } from '../registry/tool-registry';
import { checkEnvelope } from '../edge/envelope.guard';
import type { CallObserver } from '../executor/executor.service';
import { BuiltinTool, executed, ToolCallAnswer, ToolCallPipeline } from '../pipeline/tool-call.pipeline';
import type { ToolCallPendingDto } from '../pipeline/tool-call.dto';
import { approvalEnded, type McpShape, toCallToolResult } from './call-tool-result';
import { type TraceCarrier, tracingOn, traceStage, traceToolCall } from '../telemetry/tracing';
import { callContext } from './mcp-call-context';
import { isTaskAugmented, McpTasks, TASK_CAPABILITIES, taskExecution } from './mcp-tasks';
import { McpFederation } from './mcp-federation';
import { ApprovalWaiters, untilEnded } from './approval-waiters';

/** `params._meta` key under which an MCP client may name its call (then replays apply, as for a REST request_id). */
export const REQUEST_ID_META_KEY = 'io.agent-gateway/request_id';
export const APPROVAL_STATUS = 'approval_status';

export const SERVER_INFO = { name: 'agent-gateway', version: '0.1.0' };

/** What the controller hands the SDK for one HTTP request: the door's context (agent, origin, client). */
export interface McpHttpAuth {
  ctx: RequestContext;
}

/** The door's context once AuthGuard verified the MCP token: the agent and the build it was issued to. */
export type McpAgentRequest = Established<'agent' | 'agentVersion'>;

/** What one tools/call carries besides its params, whichever front end read it. */
export interface McpCallMessage {
  meta: RequestMeta | undefined;
  /** Aborted when the client cancels or goes away. */
  signal: AbortSignal;
  /** Sends on this call's response stream; none when the answer is plain JSON (no progress, no approval wait). */
  notify?: (notification: ServerNotification) => Promise<void>;
  /** `name/version` of the client, when the message names it. */
  client: string | undefined;
  /** A 2025-11-25 task-augmented call: a pending approval becomes a task. */
  taskAugmented: boolean;
  /** The HTTP request's headers (trace context). */
  headers: { get(name: string): string | null } | undefined;
}

const approvalStatusDefinition: McpTool = {
  name: APPROVAL_STATUS,
  description: 'The state of an approval this agent asked for (pending, executed with its result, rejected, expired, failed).',
  inputSchema: {
    type: 'object',
    required: ['approval_id'],
    additionalProperties: false,
    properties: { approval_id: { type: 'string', minLength: 1, maxLength: 128, description: 'The approval_id of a call that waits for approval' } },
  },
  annotations: { readOnlyHint: true, destructiveHint: false, openWorldHint: false },
};
const validateApprovalStatus = schemaValidator(approvalStatusDefinition.inputSchema, (details) => new ArgumentsInvalid(details));

/**
 * The MCP door's tools: one low-level SDK `Server` per HTTP request (the SDK needs a
 * fresh one per request in stateless mode; building one costs microseconds), whose handlers shape
 * MCP messages into envelopes for the ToolCallPipeline and its answers into CallToolResults.
 */
@Injectable()
export class McpToolServer {
  constructor(
    private readonly config: GatewayConfig,
    private readonly registry: ToolRegistry,
    private readonly pipeline: ToolCallPipeline,
    private readonly approvals: ApprovalService,
    private readonly tasks: McpTasks,
    private readonly waiters: ApprovalWaiters,
    private readonly federation: McpFederation,
  ) {}

  build(request: McpRequestContext): Server {
    const auth = request.authInfo?.extra as unknown as McpHttpAuth | undefined;
    if (!auth) throw new Error("An MCP request reached its server without the door's context");
    const ctx = established(auth.ctx, 'agent', 'agentVersion');
    const server = new Server(SERVER_INFO, { capabilities: { tools: {}, ...TASK_CAPABILITIES, ...this.federation.capabilities } });
    this.tasks.register(server, ctx);
    this.federation.register(server, ctx);
    server.setRequestHandler('tools/list', async () => ({ tools: this.toolsFor(ctx) }));
    server.setRequestHandler('tools/call', (call, sctx) => this.callTool(ctx, call.params, sdkMessage(call, sctx, request)));
    return server;
  }

  /** The tools of the agent's role (the set of GET /api/tools), in name order, and approval_status. */
  private toolsFor(ctx: AgentRequest): McpTool[] {
    const tools = this.registry.visibleTo(ctx.agent.role).map(({ definition, hints, listing }) => ({
      name: definition.name,
      ...(listing.title !== undefined && { title: listing.title }),
      description: definition.description,
      inputSchema: definition.input_schema as McpTool['inputSchema'],
      annotations: hints,
      ...(listing.outputSchema && { outputSchema: listing.outputSchema }),
      ...taskExecution(definition.requires_approval),
    }));
    return [...tools, approvalStatusDefinition].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * One tools/call, whichever front end read it: the SDK's Server, or the door's direct path for a
   * call with nothing to stream (McpController). Inside its span when tracing is on, whose parent is
   * the message's trace context (`_meta`), else the HTTP request's.
   */
  callTool(http: McpAgentRequest, params: CallToolRequest['params'], message: McpCallMessage): Promise<CallToolResult> {
    if (!tracingOn()) return this.call(http, params, message);
    const meta = message.meta;
    const parent: TraceCarrier | undefined =
      typeof meta?.[TRACEPARENT_META_KEY] === 'string'
        ? { traceparent: meta[TRACEPARENT_META_KEY], tracestate: meta[TRACESTATE_META_KEY] as string | undefined }
        : message.headers && { traceparent: message.headers.get('traceparent') ?? undefined, tracestate: message.headers.get('tracestate') ?? undefined };
    const traced = { channel: 'mcp', tool: params.name, agentId: http.agent.id, arrivedAt: http.startedAt, parent, owner: http } as const;
    return traceToolCall(traced, () => this.call(http, params, message));
  }

  private async call(http: McpAgentRequest, params: CallToolRequest['params'], message: McpCallMessage): Promise<CallToolResult> {
    const name = params.name;
    const args = (params.arguments ?? {}) as Record<string, unknown>;
    const meta = message.meta;
    const asMcp: McpShape = { resultOf: (result) => this.registry.mcpResultOf(name, result), hasOutputSchema: this.registry.hasOutputSchema(name) };
    const ctx: AgentRequest = callContext(http, message.client ?? http.client);
    const requestId = meta?.[REQUEST_ID_META_KEY];
    let call: AuthenticatedCall;
    try {
      // The REST envelope's rules (row 4), so a name, request_id or nesting refused there is refused here.
      call = {
        ...ctx,
        envelope: checkEnvelope({
          agent_id: http.agent.id,
          agent_version: http.agentVersion,
          request_id: requestId === undefined ? `mcp_${ctx.auditId.slice('audit_'.length)}` : requestId,
          tool: name,
          arguments: args,
        }),
      };
    } catch (err) {
      return toCallToolResult((await this.pipeline.refuse(ctx, err)).body, asMcp);
    }
    const progressToken = meta?.progressToken;
    const builtin = name === APPROVAL_STATUS ? this.approvalStatus() : undefined;
    const callHash = requestId === undefined ? undefined : sha256Hex(JSON.stringify({ tool: name, arguments: args }));
    const observer = observerOf(message, progressToken);
    const answer = await this.pipeline.run(call, callHash, builtin, observer);
    // Every progress report goes out before the result: a notification after it would be lost.
    await observer.sent();
    if (answer.body.status === 'pending_approval' && message.taskAugmented) return this.tasks.created(answer.body as ToolCallPendingDto, call);
    const waitS = this.config.settings.mcp.approval_wait_s;
    // A replayed answer is sent at once: waiting again would let one request, sent many times, hold many connections.
    if (answer.body.status === 'pending_approval' && !answer.replayed && progressToken !== undefined && message.notify && waitS > 0) {
      const leave = this.waiters.enter(call.agent.id, this.config.settings.mcp);
      if (leave) {
        try {
          return await traceStage('approval wait', () => this.awaitDecision(call, answer, progressToken, waitS, message, asMcp));
        } finally {
          leave();
        }
      }
    }
    return toCallToolResult(answer.body, asMcp);
  }

  /** approval_status: the built-in tool that collects an approval's outcome; another agent's id is not_found. */
  private approvalStatus(): BuiltinTool {
    return {
      validate: validateApprovalStatus,
      run: async (call) => ({ ...(await this.approvals.get(call.envelope.arguments.approval_id as string, call)) }),
    };
  }

  /**
   * The client asked for progress: wait up to approval_wait_s for a human, telling it we are still
   * waiting, and answer with the outcome if it came in time (else the pending answer).
   */
  private async awaitDecision(
    call: AuthenticatedCall,
    pending: ToolCallAnswer,
    progressToken: string | number,
    waitS: number,
    message: McpCallMessage,
    asMcp: McpShape,
  ): Promise<CallToolResult> {
    const { approval_id } = pending.body as ToolCallPendingDto;
    let tick = 0;
    const read = async () => {
      await message
        .notify?.({ method: 'notifications/progress', params: { progressToken, progress: ++tick, message: `waiting for a human to decide ${approval_id}` } })
        .catch(() => undefined);
      return this.approvals.get(approval_id, call);
    };
    const view = await untilEnded(read, Date.now() + waitS * 1000, message.signal);
    if (view?.status === 'executed') return toCallToolResult(executed(call, view.result as Record<string, unknown>), asMcp);
    if (view) return toCallToolResult({ success: false, ...approvalEnded(view), audit_id: call.auditId, request_id: call.envelope.request_id }, asMcp);
    return toCallToolResult(pending.body, asMcp);
  }
}

/**
 * What the pipeline hands the tool for this call: the client's cancellation (notifications/cancelled,
 * or its closed stream, aborts the request's signal) and, when the client asked with a
 * progressToken, each progress report as notifications/progress.
 */
function observerOf(message: McpCallMessage, progressToken: string | number | undefined): CallObserver & { sent(): Promise<void> } {
  const { signal, notify } = message;
  if (progressToken === undefined || !notify) return { signal, sent: () => Promise.resolve() };
  // One after the other, in the upstream's order; a client that reads slowly loses reports past the
  // queue's bound rather than letting an upstream fill the gateway's memory.
  let sending = Promise.resolve();
  let queued = 0;
  return {
    signal,
    onProgress: ({ progress, total, message }) => {
      if (queued >= MAX_QUEUED_PROGRESS) return;
      queued += 1;
      const text = message === undefined ? undefined : message.slice(0, MAX_PROGRESS_MESSAGE);
      const params = { progressToken, progress, ...(total !== undefined && { total }), ...(text !== undefined && { message: text }) };
      sending = sending
        .then(() => notify({ method: 'notifications/progress', params }))
        .catch(() => undefined)
        .finally(() => (queued -= 1));
    },
    sent: () => sending,
  };
}

const MAX_QUEUED_PROGRESS = 64;
const MAX_PROGRESS_MESSAGE = 1024;

/** `name/version` of the MCP client, where the request's envelope carries it (every 2026-07-28 request does). */
export function clientOf(envelope: Record<string, unknown> | undefined): string | undefined {
  return describeClient(envelope?.[CLIENT_INFO_META_KEY] as { name?: unknown; version?: unknown } | undefined);
}

/** A tools/call as the SDK's Server hands it over. */
function sdkMessage(request: CallToolRequest, sctx: ServerContext, mcp: McpRequestContext): McpCallMessage {
  return {
    meta: sctx.mcpReq._meta,
    signal: sctx.mcpReq.signal,
    notify: (notification) => sctx.mcpReq.notify(notification),
    client: clientOf(sctx.mcpReq.envelope),
    taskAugmented: isTaskAugmented(request, sctx),
    headers: mcp.requestInfo?.headers,
  };
}

export function describeClient(info: { name?: unknown; version?: unknown } | undefined): string | undefined {
  if (!info || typeof info.name !== 'string') return undefined;
  return `${info.name}/${typeof info.version === 'string' ? info.version : '?'}`.slice(0, 128);
}
