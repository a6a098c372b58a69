import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiSecurity, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from '../core/dto';

export type AuthMode = 'public' | 'agent' | 'approver' | 'agent-or-approver' | 'mcp-token';
export const AUTH_MODE = 'gateway:auth-mode';
export const TOOL_CALL = 'gateway:tool-call';
/** Routes whose tool calls the ToolCallPipeline records step by step (the interceptor stays out). */
export const PIPELINE_RECORDED = 'gateway:pipeline-recorded';
/** The door a route is (`rest` | `mcp`): its records carry it, refusals before the pipeline included. */
export const CHANNEL = 'gateway:channel';
/** Routes whose every request leaves an audit record, read from the matched route. */
export const AUDITED = 'gateway:audited';

/** Swagger security scheme names, registered in configureApp. */
export const AGENT_SECURITY = { agent_id: [], agent_timestamp: [], agent_signature: [] };
export const APPROVER_SECURITY = 'approver';
export const MCP_SECURITY = 'mcp_token';

const unauthorized = (description: string) => ApiUnauthorizedResponse({ type: ErrorResponseDto, description });

// Each decorator sets the guard's rule and its Swagger annotation together, so docs cannot drift.

/** A signed agent request (X-Agent-Id, X-Agent-Timestamp, X-Agent-Signature). */
export function AgentAuth() {
  return applyDecorators(
    SetMetadata(AUTH_MODE, 'agent' satisfies AuthMode),
    ApiSecurity(AGENT_SECURITY),
    unauthorized(
      "unauthenticated: missing_signature, malformed_headers, unknown_agent, timestamp_out_of_range (outside settings.signature_tolerance_s), bad_signature, agent_id_mismatch (the envelope names another agent). Failed attempts spend the address's budget (settings.unauthenticated_rate_limit); once spent, 429 rate_limited for every request from it until the window ends",
    ),
  );
}

/** An approver with `Authorization: Bearer <token>`. Agent signatures are never enough. Audited. */
export function ApproverAuth() {
  return applyDecorators(
    SetMetadata(AUTH_MODE, 'approver' satisfies AuthMode),
    Audited(),
    ApiBearerAuth(APPROVER_SECURITY),
    unauthorized('unauthenticated: missing_token, malformed_token, invalid_token (an agent signature is never enough)'),
  );
}

/** An approver (bearer token), or else a signed agent. Audited. */
export function AgentOrApproverAuth() {
  return applyDecorators(
    SetMetadata(AUTH_MODE, 'agent-or-approver' satisfies AuthMode),
    Audited(),
    ApiBearerAuth(APPROVER_SECURITY),
    ApiSecurity(AGENT_SECURITY),
    unauthorized(
      'unauthenticated: neither a valid approver token (missing_token, malformed_token, invalid_token) nor a valid agent signature (missing_signature, bad_signature, …)',
    ),
  );
}

/** A route anyone may call (health probes). Every other route must say who may call it. */
export function Public() {
  return SetMetadata(AUTH_MODE, 'public' satisfies AuthMode);
}

/** Every request to this route or controller is recorded in the audit log, refusals included. */
export function Audited() {
  return SetMetadata(AUDITED, true);
}

/** A tool call through the REST door: the envelope guard, then the tool-call pipeline. */
export function ToolCallRoute() {
  return applyDecorators(AgentAuth(), Audited(), SetMetadata(TOOL_CALL, true), SetMetadata(PIPELINE_RECORDED, true), SetMetadata(CHANNEL, 'rest'));
}

/** The MCP door: an agent's bearer token; a refused one is recorded, its tool calls by the pipeline. */
export function McpRoute() {
  return applyDecorators(
    SetMetadata(AUTH_MODE, 'mcp-token' satisfies AuthMode),
    Audited(),
    SetMetadata(PIPELINE_RECORDED, true),
    SetMetadata(CHANNEL, 'mcp'),
    ApiBearerAuth(MCP_SECURITY),
    unauthorized(
      'unauthenticated: missing_token, invalid_token (unknown, or an approver\'s), token_expired; with WWW-Authenticate: Bearer error="invalid_token". Recorded, and counted by the per-address failed-authentication limit',
    ),
  );
}
