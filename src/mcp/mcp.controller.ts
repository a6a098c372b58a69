import { Controller, Delete, Get, HttpCode, OnModuleDestroy, Post, Req, Res } from '@nestjs/common';
import { ApiBody, ApiForbiddenResponse, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { createMcpHandler, type AuthInfo } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import type { Request, Response } from 'express';
import { McpRoute, Public } from '../context/route.decorators';
import { ErrorResponseDto } from '../core/dto';
import { GatewayError } from '../core/errors';
import { contextOf } from '../context/request-context';
import { GatewayConfig } from '../config/gateway-config';
import { McpClients } from './mcp-clients';
import { McpHttpAuth, McpToolServer } from './mcp-tool-server';

const JSONRPC_PARSE_ERROR = -32700;

/**
 * The MCP door (API.md §12): Streamable HTTP, stateless, both protocol revisions, through the
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
    tools: McpToolServer,
  ) {
    this.handler = createMcpHandler((request) => tools.build(request));
    this.node = toNodeHandler(this.handler);
  }

  @Post()
  @HttpCode(200)
  @McpRoute()
  @ApiOperation({
    summary: 'Model Context Protocol over Streamable HTTP (JSON-RPC: tools/list, tools/call)',
    description:
      'Not a REST resource: point an MCP client here with `Authorization: Bearer <agent MCP token>` (see README, "Connect an MCP client"). Serves protocol revisions 2025-11-25 (stateless) and 2026-07-28. Every tools/call passes the same checks, limits, approval and audit as POST /api/tools/call.',
  })
  @ApiBody({ schema: { type: 'object', description: 'A JSON-RPC 2.0 message', example: { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} } } })
  @ApiOkResponse({ description: 'A JSON-RPC response (application/json or text/event-stream)' })
  @ApiForbiddenResponse({ type: ErrorResponseDto, description: 'origin_not_allowed: an Origin header not in settings.mcp.allowed_origins' })
  @ApiResponse({ status: 405, description: 'GET and DELETE: this endpoint is stateless' })
  async post(@Req() req: Request & { auth?: AuthInfo }, @Res() res: Response): Promise<void> {
    const ctx = contextOf(req);
    const origin = req.header('origin');
    // Thrown, so the exception filter records the refusal like any other on this audited route.
    if (origin !== undefined && !this.config.settings.mcp.allowed_origins.includes(origin)) {
      throw new GatewayError(403, 'denied', 'origin_not_allowed', 'This Origin may not call /mcp (settings.mcp.allowed_origins)');
    }
    if (ctx.bodyError !== undefined) return parseError(res, ctx.bodyError);
    ctx.client = this.clients.seen(req.body, ctx);
    const auth: McpHttpAuth = { ctx };
    req.auth = { token: '', clientId: ctx.agent!.id, scopes: [], extra: auth as unknown as Record<string, unknown> };
    await this.node(req, res, req.body);
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
}

function notAllowed(res: Response): void {
  res.status(405).setHeader('Allow', 'POST').json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed: this MCP endpoint is stateless (POST only)' }, id: null });
}

/** A body that is not JSON (or too large), from an authenticated agent: a JSON-RPC parse error. */
function parseError(res: Response, error: unknown): void {
  const status = error instanceof GatewayError ? error.httpStatus : 400;
  res.status(status).json({ jsonrpc: '2.0', error: { code: JSONRPC_PARSE_ERROR, message: error instanceof GatewayError ? error.message : 'Parse error' }, id: null });
}
