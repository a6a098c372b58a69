import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiSecurity, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from '../common/dto';

export type AuthMode = 'public' | 'agent' | 'approver' | 'agent-or-approver';
export const AUTH_MODE = 'gateway:auth-mode';
export const TOOL_CALL = 'gateway:tool-call';

/** Swagger security scheme names, registered in configureApp. */
export const AGENT_SECURITY = { agent_id: [], agent_timestamp: [], agent_signature: [] };
export const APPROVER_SECURITY = 'approver';

const unauthorized = (description: string) => ApiUnauthorizedResponse({ type: ErrorResponseDto, description });

// Each decorator sets the guard's rule and its Swagger annotation together, so docs cannot drift.

/** A signed agent request (API.md §3). */
export function AgentAuth() {
  return applyDecorators(
    SetMetadata(AUTH_MODE, 'agent' satisfies AuthMode),
    ApiSecurity(AGENT_SECURITY),
    unauthorized('Missing, malformed or wrong signature (reason_code says which)'),
  );
}

/** An approver with `Authorization: Bearer <token>` (API.md §6). Agent signatures are never enough. */
export function ApproverAuth() {
  return applyDecorators(
    SetMetadata(AUTH_MODE, 'approver' satisfies AuthMode),
    ApiBearerAuth(APPROVER_SECURITY),
    unauthorized('Missing or unknown approver token'),
  );
}

/** An approver (bearer token), or else a signed agent. */
export function AgentOrApproverAuth() {
  return applyDecorators(
    SetMetadata(AUTH_MODE, 'agent-or-approver' satisfies AuthMode),
    ApiBearerAuth(APPROVER_SECURITY),
    ApiSecurity(AGENT_SECURITY),
    unauthorized('Neither a valid approver token nor a valid agent signature'),
  );
}

/** A route anyone may call (health probes). Every other route must say who may call it. */
export function Public() {
  return SetMetadata(AUTH_MODE, 'public' satisfies AuthMode);
}

/** A tool call: the envelope and policy guards apply (API.md §4 rows 4 and 7–12). */
export function ToolCallRoute() {
  return applyDecorators(AgentAuth(), SetMetadata(TOOL_CALL, true));
}
