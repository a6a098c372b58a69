import { classifyInboundRequest, type CallToolRequest, type RequestId, type RequestMeta } from '@modelcontextprotocol/server';
import type { IncomingHttpHeaders } from 'node:http';

/** The revision whose results the door writes itself (a later one goes through the SDK until the door knows it). */
const DIRECT_REVISION = '2026-07-28';

/** A tools/call the door answers itself, as plain JSON. */
export interface DirectToolCall {
  id: RequestId;
  params: CallToolRequest['params'];
  meta: RequestMeta | undefined;
}

/**
 * A single 2026-07-28 `tools/call` that the SDK would take exactly as it is and that has nothing to
 * stream: its headers agree with its body (the SDK's own classification, plus the standard headers
 * spelled plainly), no progressToken (no progress, no approval wait) and no task. The door answers
 * such a call itself, as application/json, without building a Server per request. Anything else —
 * other methods, 2025-11-25, headers in another spelling, any doubt — goes through the SDK, which
 * also words every refusal. Called after screenMcpBody has checked name, arguments and _meta.
 */
export function directToolCall(body: unknown, headers: IncomingHttpHeaders): DirectToolCall | undefined {
  const message = body as { method?: unknown; id?: unknown; params?: { name?: unknown; _meta?: Record<string, unknown>; task?: unknown } } | null;
  if (typeof message !== 'object' || message === null || Array.isArray(message) || message.method !== 'tools/call') return undefined;
  const params = message.params;
  const version = headers['mcp-protocol-version'];
  if (!params || typeof params.name !== 'string' || params.task !== undefined || params._meta?.progressToken !== undefined) return undefined;
  if (typeof version !== 'string' || headers['mcp-method'] !== 'tools/call' || headers['mcp-name'] !== params.name) return undefined;
  const route = classifyInboundRequest({ httpMethod: 'POST', body, protocolVersionHeader: version, mcpMethodHeader: 'tools/call', mcpNameHeader: params.name });
  if (route.kind !== 'modern' || route.messageKind !== 'request') return undefined;
  const { era, revision } = route.classification;
  if (era !== 'modern' || revision !== version || revision !== DIRECT_REVISION) return undefined;
  return { id: route.message.id, params: route.message.params as CallToolRequest['params'], meta: params._meta };
}
