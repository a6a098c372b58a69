import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiSecurity, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from '../common/dto';

export type AuthMode = 'public' | 'agent';
export const AUTH_MODE = 'gateway:auth-mode';
export const TOOL_CALL = 'gateway:tool-call';

/** Swagger security scheme names, registered in configureApp. */
export const AGENT_SECURITY = { agent_id: [], agent_timestamp: [], agent_signature: [] };

/** A signed agent request (API.md §3). Sets the guard's rule and its Swagger annotation together. */
export function AgentAuth() {
  return applyDecorators(
    SetMetadata(AUTH_MODE, 'agent' satisfies AuthMode),
    ApiSecurity(AGENT_SECURITY),
    ApiUnauthorizedResponse({ type: ErrorResponseDto, description: 'Missing, malformed or wrong signature (reason_code says which)' }),
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
