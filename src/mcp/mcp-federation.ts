import { Injectable } from '@nestjs/common';
import { ProtocolError, ProtocolErrorCode, type Server, type ServerCapabilities, type ServerContext } from '@modelcontextprotocol/server';
import { TOOLS_CALL_SCOPE } from '../auth/oauth/oauth-scopes';
import type { AgentRequest, AuthenticatedCall, Established } from '../context/request-context';
import { ArgumentsInvalid, GatewayError, PolicyDenied } from '../core/errors';
import { checkEnvelope } from '../edge/envelope.guard';
import { ToolCancelled } from '../executor/executor.service';
import { McpKind } from '../kinds/mcp/mcp-kind';
import type { BuiltinTool, ToolCallAnswer } from '../pipeline/tool-call.pipeline';
import { ToolCallPipeline } from '../pipeline/tool-call.pipeline';
import { callContext } from './mcp-call-context';
import { Redactor } from '../redaction/redactor';

/** The entries under which the pipeline limits and records a read or a get (no configured tool can take a name with '/'). */
export const RESOURCES_READ = 'resources/read';
export const PROMPTS_GET = 'prompts/get';

const MAX_PROMPT_ARGUMENTS = 32;
const MAX_PROMPT_ARGUMENT_LENGTH = 8192;

type McpAgentRequest = Established<'agent' | 'agentVersion'>;

/**
 * The MCP door's resources/* and prompts/* (README "Upstream MCP servers"): upstream servers'
 * resources and prompts that gateway.yaml offers a role (mcp_servers.*.resources, .prompts),
 * nothing else. Lists show the pinned definitions; a read or a get is one call of the gateway's
 * `resources/read` or `prompts/get` entry through the ToolCallPipeline (the agent's limits, a
 * decision record naming the server and the uri or prompt, a refusal with its reason code, an
 * outcome record), and its contents leave scrubbed of known secrets, within the result cap.
 */
@Injectable()
export class McpFederation {
  constructor(
    private readonly mcp: McpKind,
    private readonly pipeline: ToolCallPipeline,
    private readonly redactor: Redactor,
  ) {}

  /** The capabilities to announce: resources and prompts only when some server offers them. */
  get capabilities(): ServerCapabilities {
    const { resources, prompts } = this.mcp.catalog.offers;
    return { ...(resources && { resources: {} }), ...(prompts && { prompts: {} }) };
  }

  register(server: Server, http: McpAgentRequest): void {
    const { resources, prompts } = this.mcp.catalog.offers;
    const role = http.agent.role;
    if (resources) {
      server.setRequestHandler('resources/list', () => Promise.resolve({ resources: this.mcp.catalog.resourcesFor(role) }));
      // Templates are not offered: a declared prefix is read by its uris, which tools' resource links name.
      server.setRequestHandler('resources/templates/list', () => Promise.resolve({ resourceTemplates: [] }));
      server.setRequestHandler('resources/read', async (request, sctx) => {
        const uri = request.params.uri;
        const upstream = this.mcp.catalog.resourceServer(role, uri);
        const args = upstream === undefined ? { uri } : { server: upstream, uri };
        const builtin: BuiltinTool = {
          validate: () => {
            scopeCheck(http);
            if (upstream === undefined)
              throw new PolicyDenied('resource_not_allowed', `No MCP server offers resource "${uri.slice(0, 256)}" to role "${role}"`);
          },
          run: () => this.upstreamCall(sctx, (signal) => this.mcp.readResource(upstream!, uri, signal)),
        };
        return this.answer(await this.run(http, RESOURCES_READ, args, builtin));
      });
    }
    if (prompts) {
      server.setRequestHandler('prompts/list', () => Promise.resolve({ prompts: this.mcp.catalog.promptsFor(role) }));
      server.setRequestHandler('prompts/get', async (request, sctx) => {
        const { name } = request.params;
        const promptArgs = (request.params.arguments ?? {}) as Record<string, string>;
        const upstream = this.mcp.catalog.promptServer(role, name);
        const args = upstream === undefined ? { name } : { server: upstream, name, arguments: promptArgs };
        const builtin: BuiltinTool = {
          validate: () => {
            scopeCheck(http);
            if (upstream === undefined) throw new PolicyDenied('prompt_not_allowed', `No MCP server offers prompt "${name.slice(0, 128)}" to role "${role}"`);
            checkPromptArguments(promptArgs);
          },
          run: () => this.upstreamCall(sctx, (signal) => this.mcp.getPrompt(upstream!, name, promptArgs, signal)),
        };
        return this.answer(await this.run(http, PROMPTS_GET, args, builtin));
      });
    }
  }

  /** One read or get as a call of the gateway's entry `tool`, through the pipeline (no request_id: no replay key). */
  private async run(http: McpAgentRequest, tool: string, args: Record<string, unknown>, builtin: BuiltinTool): Promise<ToolCallAnswer> {
    const ctx: AgentRequest = callContext(http);
    let call: AuthenticatedCall;
    try {
      const envelope = checkEnvelope({
        agent_id: http.agent.id,
        agent_version: http.agentVersion,
        request_id: `mcp_${ctx.auditId.slice('audit_'.length)}`,
        tool,
        arguments: args,
      });
      call = { ...ctx, envelope };
    } catch (err) {
      return this.pipeline.refuse(ctx, err);
    }
    return this.pipeline.run(call, undefined, builtin);
  }

  /** The upstream's answer, scrubbed of known secret values; the client's cancel cancels it. */
  private async upstreamCall(sctx: ServerContext, send: (signal: AbortSignal) => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
    const signal = sctx.mcpReq.signal;
    try {
      return this.redactor.scrubSecrets(await send(signal));
    } catch (err) {
      if (signal.aborted) throw new ToolCancelled();
      if (err instanceof GatewayError) err.message = this.redactor.scrubSecrets(err.message);
      throw err;
    }
  }

  /** The result as MCP's own (ReadResourceResult, GetPromptResult), or the refusal as a JSON-RPC error whose data holds its reason code and audit id. */
  private answer<T>(answer: ToolCallAnswer): T {
    const body = answer.body;
    if (body.status === 'executed' && 'result' in body) return body.result as T;
    const refusal = body as { status: string; reason_code?: string; error?: string; audit_id: string; request_id?: string };
    const code = answer.httpStatus < 500 ? ProtocolErrorCode.InvalidParams : ProtocolErrorCode.InternalError;
    throw new ProtocolError(code, `${refusal.reason_code ?? refusal.status}: ${refusal.error ?? 'refused'}`, {
      status: refusal.status,
      reason_code: refusal.reason_code,
      audit_id: refusal.audit_id,
      request_id: refusal.request_id,
    });
  }
}

/** An OAuth caller reads and gets with the broad scope only (static MCP tokens carry none, and need none). */
function scopeCheck(http: McpAgentRequest): void {
  if (http.oauth && !(http.oauth.scopes ?? []).includes(TOOLS_CALL_SCOPE))
    throw new PolicyDenied('insufficient_scope', `The token's scope does not cover resources and prompts: it needs ${TOOLS_CALL_SCOPE}`);
}

/** MCP's prompt arguments: strings by name, bounded. */
function checkPromptArguments(args: Record<string, unknown>): void {
  const entries = Object.entries(args);
  const bad = entries.length > MAX_PROMPT_ARGUMENTS || entries.some(([, value]) => typeof value !== 'string' || value.length > MAX_PROMPT_ARGUMENT_LENGTH);
  if (bad)
    throw new ArgumentsInvalid([
      { message: `prompt arguments are at most ${MAX_PROMPT_ARGUMENTS} strings of at most ${MAX_PROMPT_ARGUMENT_LENGTH} characters` },
    ]);
}
