import { Controller, Delete, Get, HttpCode, OnModuleDestroy, Post, Req, Res } from '@nestjs/common';
import { ApiBody, ApiForbiddenResponse, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { createMcpHandler, SERVER_INFO_META_KEY, type AuthInfo } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import type { Request, Response } from 'express';
import { McpRoute, Public } from '../context/route.decorators';
import { ErrorResponseDto } from '../core/dto';
import type { ErrorBody } from '../pipeline/error-body';
import { GatewayError, InvalidRequest } from '../core/errors';
import { contextOf, established, RequestContext } from '../context/request-context';
import { callContext } from './mcp-call-context';
import { GatewayConfig } from '../config/gateway-config';
import { ToolCallPipeline } from '../pipeline/tool-call.pipeline';
import { BATCH_REFUSED, isToolCall, JsonRpcId, screenMcpBody, ScreenedMessage } from './mcp-call-screen';
import { McpClients } from './mcp-clients';
import { clientOf, McpAgentRequest, McpCallMessage, McpHttpAuth, McpToolServer, SERVER_INFO } from './mcp-tool-server';
import { DirectToolCall, directToolCall } from './direct-tool-call';

const JSONRPC_PARSE_ERROR = -32700;
const JSONRPC_INTERNAL_ERROR = -32603;

interface Refusal {
  httpStatus: number;
  body: ErrorBody;
}

/**
 * The MCP door (README "Connect an MCP client"): Streamable HTTP, stateless, both protocol revisions, through the
 * official SDK. The agent is proven by its bearer token (AuthGuard, before any JSON-RPC is read);
 * each tool call then goes through the same ToolCallPipeline as POST /api/tools/call.
 */
@ApiTags('mcp')
@Controller('mcp')
export class McpController implements OnModuleDestroy {
  private readonly handler;
  private readonly node;

  constructor(
    private readonly config: GatewayConfig,
    private readonly clients: McpClients,
    private readonly pipeline: ToolCallPipeline,
    private readonly tools: McpToolServer,
  ) {
    this.handler = createMcpHandler((request) => tools.build(request));
    this.node = toNodeHandler(this.handler);
  }

  @Post()
  @HttpCode(200)
  @McpRoute()
  @ApiOperation({
    summary: 'Model Context Protocol over Streamable HTTP (JSON-RPC: tools/*, and resources/* and prompts/* of federated upstreams)',
    description:
      'Not a REST resource: point an MCP client here with `Authorization: Bearer <agent MCP token>` (see README, "Connect an MCP client"). Serves protocol revisions 2025-11-25 (stateless) and 2026-07-28. Every tools/call passes the same checks, limits, approval and audit as POST /api/tools/call. A refused or failed call is a CallToolResult with isError: true and structuredContent { status, reason_code, error, audit_id, request_id, details? } (the reason codes of POST /api/tools/call); one that needs approval is isError: true with structuredContent { status: pending_approval, approval_id, expires_at }: collect it with the gateway\'s own tool approval_status. With a progressToken the first answer waits up to settings.mcp.approval_wait_s for a human (at most settings.mcp.max_waiting_calls_per_agent per agent, settings.mcp.max_waiting_calls in all). Name a call with params._meta["io.agent-gateway/request_id"] for replays. A 2026-07-28 tools/call without a progressToken is answered as application/json. resources/read and prompts/get of what gateway.yaml federates (mcp_servers.*.resources / prompts) are checked, limited and audited the same way; a refusal is a JSON-RPC error whose data holds reason_code and audit_id: resource_not_allowed, prompt_not_allowed, resource_definition_changed and prompt_definition_changed (quarantined until re-pinned), rate_limited. A task-capable 2025-11-25 client gets a task for a call that needs approval (tasks/get, tasks/result, which waits up to settings.mcp.approval_wait_s, tasks/cancel withdraws the approval).',
  })
  @ApiBody({ schema: { type: 'object', description: 'A JSON-RPC 2.0 message', example: { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} } } })
  @ApiOkResponse({ description: 'A JSON-RPC response (application/json or text/event-stream)' })
  @ApiForbiddenResponse({
    type: ErrorResponseDto,
    description:
      "origin_not_allowed: an Origin header not in settings.mcp.allowed_origins. With OAuth: no_agent_for_token (a valid token that no agent's oauth_clients lists and no role_claim maps), agent_id_too_long, insufficient_scope (a tools/call outside the token's scope; WWW-Authenticate names the scope to ask for: tools:call or tool:NAME)",
  })
  @ApiResponse({
    status: 401,
    type: ErrorResponseDto,
    description:
      'missing_token, invalid_token, token_expired (a static MCP token, or an OAuth access token: wrong issuer, audience, signature, algorithm or time). With OAuth configured, WWW-Authenticate: Bearer resource_metadata="…/.well-known/oauth-protected-resource/mcp"',
  })
  @ApiResponse({ status: 429, type: ErrorResponseDto, description: 'rate_limited: too many failed authentications from this address (Retry-After)' })
  @ApiResponse({
    status: 503,
    type: ErrorResponseDto,
    description: "issuer_unavailable (an OAuth issuer's metadata or key set cannot be fetched: the token is never let through), audit_unavailable",
  })
  @ApiResponse({ status: 405, description: 'GET and DELETE: this endpoint is stateless' })
  @ApiResponse({
    status: 400,
    description:
      'A tools/call message the gateway refuses before the SDK reads it, answered with a JSON-RPC error per message (-32602 or -32600; an array for a batch) whose data holds status, reason_code and audit_id: invalid_params (name not a string, arguments not an object, no params), invalid_jsonrpc_request, arguments_too_deep, message_too_deep (over 128 levels), batch_refused (the well-formed messages of a refused batch: nothing in it runs). A body that is not JSON: -32700. A tool call the SDK refuses is recorded as invalid_mcp_request',
  })
  async post(@Req() req: Request & { auth?: AuthInfo }, @Res() res: Response): Promise<void> {
    const ctx = contextOf(req);
    const origin = req.header('origin');
    // Thrown, so the exception filter records the refusal like any other on this audited route.
    if (origin !== undefined && !this.config.settings.mcp.allowed_origins.includes(origin)) {
      throw new GatewayError(403, 'denied', 'origin_not_allowed', 'This Origin may not call /mcp (settings.mcp.allowed_origins)');
    }
    if (ctx.bodyError !== undefined) return this.parseError(res, ctx, ctx.bodyError);
    ctx.client = this.clients.seen(req.body, ctx);
    const refused = screenMcpBody(req.body);
    if (refused) return this.refuse(res, ctx, Array.isArray(req.body), refused);
    const direct = directToolCall(req.body, req.headers);
    if (direct) return this.answerDirect(req, res, established(ctx, 'agent', 'agentVersion'), direct);
    const auth: McpHttpAuth = { ctx };
    req.auth = { token: '', clientId: ctx.agent!.id, scopes: [], extra: auth as unknown as Record<string, unknown> };
    await this.node(req, res, req.body);
    // The SDK refused the request itself (a 4xx: headers that disagree with the body, say) before
    // any handler ran: its tool calls never reached the pipeline, so they are put on record here.
    if (res.statusCode >= 400 && res.statusCode < 500) await this.recordSdkRefusal(ctx, req.body, res.statusCode);
  }

  @Get()
  @Public()
  @ApiResponse({ status: 405, description: 'Stateless: no server-initiated stream' })
  get(@Res() res: Response): void {
    notAllowed(res);
  }

  @Delete()
  @Public()
  @ApiResponse({ status: 405, description: 'Stateless: no session to end' })
  remove(@Res() res: Response): void {
    notAllowed(res);
  }

  async onModuleDestroy(): Promise<void> {
    await this.handler.close();
  }

  /**
   * A tools/call with nothing to stream, answered as the SDK would answer it (a 2026-07-28 result:
   * `resultType`, the server's identity in `_meta`), as application/json and without a Server per
   * request. A client that goes away aborts the call as a cancellation would.
   */
  private async answerDirect(req: Request, res: Response, ctx: McpAgentRequest, call: DirectToolCall): Promise<void> {
    const abort = new AbortController();
    const gone = () => res.writableEnded || abort.abort();
    res.once('close', gone);
    const message: McpCallMessage = {
      meta: call.meta,
      signal: abort.signal,
      client: clientOf(call.meta),
      taskAugmented: false,
      headers: { get: (name) => req.header(name) ?? null },
    };
    let reply: object;
    try {
      const result = await this.tools.callTool(ctx, call.params, message);
      reply = { result: { ...result, resultType: 'complete', _meta: { ...result._meta, [SERVER_INFO_META_KEY]: SERVER_INFO } }, jsonrpc: '2.0', id: call.id };
    } catch {
      // What the SDK's Server answers for a handler that threw: the pipeline has put the call on record, or failed closed.
      reply = { jsonrpc: '2.0', id: call.id, error: { code: JSONRPC_INTERNAL_ERROR, message: 'Internal error' } };
    } finally {
      res.off('close', gone);
    }
    res.status(200).json(reply);
  }

  /** A body that is not JSON (or too large), from an authenticated agent: recorded, and answered as a JSON-RPC parse error. */
  private async parseError(res: Response, ctx: RequestContext, error: unknown): Promise<void> {
    const { httpStatus, body } = await this.refusal(ctx, error);
    res
      .status(httpStatus)
      .json({ jsonrpc: '2.0', error: { code: httpStatus >= 500 ? JSONRPC_INTERNAL_ERROR : JSONRPC_PARSE_ERROR, message: body.error, data: body }, id: null });
  }

  /**
   * A body the screen refused, before the SDK saw it: each tool call in it gets its refusal record
   * (a body without one still leaves one record), then every message its JSON-RPC error. 400, or
   * the 503 of a record that could not be written; a batch is answered with an array.
   */
  private async refuse(res: Response, ctx: RequestContext, batch: boolean, messages: ScreenedMessage[]): Promise<void> {
    const toRecord = messages.some((m) => m.toolCall) ? messages.filter((m) => m.toolCall) : [messages.find((m) => m.error.reasonCode !== BATCH_REFUSED)!];
    const answers = new Map<ScreenedMessage, Refusal>();
    await Promise.all(toRecord.map(async (m) => answers.set(m, await this.refusal(callContext(ctx), m.error))));
    const replies = messages.map((m) => {
      const answer = answers.get(m);
      return rpcError(m.id, answer && answer.httpStatus >= 500 ? JSONRPC_INTERNAL_ERROR : m.rpcCode, answer?.body ?? errorData(m.error));
    });
    const status = Math.max(400, ...[...answers.values()].map((a) => a.httpStatus));
    res.status(status).json(batch ? replies : replies[0]);
  }

  private async recordSdkRefusal(ctx: RequestContext, body: unknown, httpStatus: number): Promise<void> {
    const calls = (Array.isArray(body) ? body : [body]).filter(isToolCall);
    const error = new InvalidRequest(
      'invalid_mcp_request',
      'The MCP request was refused before the tool call was read (see the JSON-RPC error)',
      undefined,
      httpStatus,
    );
    await Promise.all(calls.map(() => this.refusal(callContext(ctx), error)));
  }

  /** The refusal on record (the pipeline's one place for that), with its error body. */
  private async refusal(ctx: RequestContext, error: unknown): Promise<Refusal> {
    const answer = await this.pipeline.refuse(ctx, error);
    return { httpStatus: answer.httpStatus, body: answer.body };
  }
}

function rpcError(id: JsonRpcId, code: number, data: { status: string; reason_code: string; error: string }) {
  return { jsonrpc: '2.0', id, error: { code, message: `${data.status} (${data.reason_code}): ${data.error}`, data } };
}

function errorData(error: GatewayError): { status: string; reason_code: string; error: string } {
  return { status: error.status, reason_code: error.reasonCode, error: error.message };
}

function notAllowed(res: Response): void {
  res
    .status(405)
    .setHeader('Allow', 'POST')
    .json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed: this MCP endpoint is stateless (POST only)' }, id: null });
}
