import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import { newAuditId } from '../core/ids';
import type { Request } from 'express';
import type { Agent, Approver } from '../config/gateway-config';

/** Who an OAuth access token says acts: its issuer and subject, the client, and on whose behalf (`act.sub`). */
export interface OAuthCaller {
  issuer: string;
  subject: string;
  client_id?: string;
  act_sub?: string;
  /** The token's `scope` claim, split; absent when the token has none. */
  scopes?: readonly string[];
}

/** A request_id (also the shape of the ids an approver may search the audit log by). */
export const REQUEST_ID_PATTERN = '^[A-Za-z0-9._:-]{1,128}$';

export interface ToolCallEnvelope {
  agent_id: string;
  agent_version: string;
  request_id: string;
  tool: string;
  arguments: Record<string, unknown>;
}

export type Channel = 'rest' | 'mcp';

/** Where a request came from, for its audit records: set once the framework matched its route. */
export interface RequestOrigin {
  method: string;
  path: string;
  client_ip?: string;
}

/**
 * What the gateway has established about one request (REST) or one tool call (MCP) so far; each
 * step adds its part.
 */
export interface RequestContext {
  auditId: string;
  /** performance.now() when the gateway first saw the request. */
  startedAt: number;
  /** Set by RouteGuard from the matched route's metadata: does this request leave audit records? */
  audited?: boolean;
  origin?: RequestOrigin;
  /** The door of a tool call, and the MCP client's name/version when it told us. */
  channel?: Channel;
  client?: string;
  /** A body the parser refused before routing; RouteGuard raises it once the route is known. */
  bodyError?: unknown;
  /** Set by AuthGuard once the agent's signature checks out. */
  agent?: Agent;
  /** Set by AuthGuard from an MCP token: the agent build it was issued to. */
  agentVersion?: string;
  /** Set by AuthGuard when an OAuth access token proved the caller: what its audit records name. */
  oauth?: OAuthCaller;
  /** Set by AuthGuard once an approver's bearer token checks out. */
  approver?: Approver;
  /** Set by EnvelopeGuard once the body has the envelope's shape. */
  envelope?: ToolCallEnvelope;
  /** Set by the pipeline's replay step when this call holds its (agent_id, request_id) key. */
  idempotency?: { key: string; bodyHash: string };
  /** Hex SHA-256 of the raw body: signed over and the key's body check for replays. */
  bodySha256?: string;
  /** Set by the exception filter for an error it did not expect (500): name and code only, for the request's log line. */
  unexpectedError?: { err_name?: string; err_code?: string };
}

/** A RequestContext in which the named parts are established (by the guards that ran before). */
export type Established<K extends keyof RequestContext> = RequestContext & { [P in K]-?: NonNullable<RequestContext[P]> };

/** A tool call once its door checked it: the verified agent and a well-formed envelope. */
export type AuthenticatedCall = Established<'agent' | 'envelope'>;
/** A request by a signed agent. */
export type AgentRequest = Established<'agent'>;
/** A request by an approver whose bearer token checked out. */
export type ApproverRequest = Established<'approver'>;

/**
 * `ctx` typed with `keys` established; a key missing means a route ran without the guard that sets
 * it, a bug answered as a bare 500, never a call that runs unchecked.
 */
export function established<K extends keyof RequestContext>(ctx: RequestContext, ...keys: K[]): Established<K> {
  const missing = keys.filter((key) => ctx[key] === undefined);
  if (missing.length > 0) throw new Error(`The request reached its handler without ${missing.join(', ')}: a guard did not run`);
  return ctx as Established<K>;
}

const CONTEXT = Symbol('gateway.context');
type WithContext = Request & { [CONTEXT]?: RequestContext };

export function contextOf(req: Request): RequestContext {
  const r = req as WithContext;
  return (r[CONTEXT] ??= { auditId: newAuditId(), startedAt: performance.now() });
}

export { newAuditId, newId } from '../core/ids';

/** Controller parameter: the RequestContext the guards built. */
export const Ctx = createParamDecorator((_data: unknown, ctx: ExecutionContext) => contextOf(ctx.switchToHttp().getRequest<Request>()));

/** Controller parameters narrowed to what the route's guards established. */
export const CallCtx = createParamDecorator((_data: unknown, ctx: ExecutionContext): AuthenticatedCall =>
  established(contextOf(ctx.switchToHttp().getRequest<Request>()), 'agent', 'envelope'),
);
export const AgentCtx = createParamDecorator((_data: unknown, ctx: ExecutionContext): AgentRequest =>
  established(contextOf(ctx.switchToHttp().getRequest<Request>()), 'agent'),
);
export const ApproverCtx = createParamDecorator((_data: unknown, ctx: ExecutionContext): ApproverRequest =>
  established(contextOf(ctx.switchToHttp().getRequest<Request>()), 'approver'),
);
