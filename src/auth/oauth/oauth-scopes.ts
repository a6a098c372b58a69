import { GatewayError } from '../../core/errors';
import type { OAuthCaller } from '../../context/request-context';

/**
 * Scopes narrow what an OAuth caller's role allows (README, "Sign in with your identity provider"):
 * a tools/call of tool NAME needs `tools:call` (every tool of the role) or `tool:NAME` (that tool)
 * in the token's `scope`. tools/list needs no scope and lists the role's tools; the gateway's own
 * approval_status (the caller's own approvals) needs none. Static MCP tokens carry no scopes.
 */
export const TOOLS_CALL_SCOPE = 'tools:call';
export const toolScope = (name: string) => `tool:${name}`;

/** The gateway's own tool (a name no configured tool may take): reads only the caller's own approvals. */
const OWN_TOOL = 'approval_status';

/**
 * The scopes the public metadata advertises: tools:call only. The per-tool scopes are named to an
 * authenticated caller in its 403 challenge; listed here they would tell anyone every tool's name.
 */
export const SCOPES_SUPPORTED = [TOOLS_CALL_SCOPE];

/** 403 with the step-up challenge (RFC 6750 §3.1): the scope to ask the issuer for. */
export class InsufficientScope extends GatewayError {
  constructor(tool: string, resourceMetadata: string) {
    const scope = toolScope(tool);
    super(403, 'denied', 'insufficient_scope', `The token's scope does not cover tool "${tool}": it needs ${TOOLS_CALL_SCOPE} or ${scope}`, undefined, {
      'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${scope}", resource_metadata="${resourceMetadata}"`,
    });
  }
}

/**
 * The first configured tool a JSON-RPC body (one message or a batch) calls that the caller's scopes
 * do not cover. Only configured names (`^[A-Za-z0-9_-]{1,64}$`) are named in the challenge header;
 * any other name is the pipeline's to refuse (unknown_tool).
 */
export function toolOutOfScope(caller: OAuthCaller, body: unknown, isConfigured: (name: string) => boolean): string | undefined {
  const scopes = new Set(caller.scopes ?? []);
  if (scopes.has(TOOLS_CALL_SCOPE)) return undefined;
  for (const message of Array.isArray(body) ? body : [body]) {
    const name = toolCallName(message);
    if (name !== undefined && name !== OWN_TOOL && isConfigured(name) && !scopes.has(toolScope(name))) return name;
  }
  return undefined;
}

function toolCallName(message: unknown): string | undefined {
  if (message === null || typeof message !== 'object') return undefined;
  const { method, params } = message as { method?: unknown; params?: { name?: unknown } };
  return method === 'tools/call' && typeof params?.name === 'string' ? params.name : undefined;
}
