import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { GatewayError, Unauthenticated } from '../core/errors';
import { contextOf } from '../context/request-context';
import { AuthFailureLimiter } from '../throttle/auth-failure-limiter';
import { AgentAuthenticator } from './agent-authenticator';
import { ApproverAuthenticator } from './approver-authenticator';
import { McpTokenAuthenticator, OAuthNoAgent } from './mcp-token.authenticator';
import { InsufficientScope, toolOutOfScope } from './oauth/oauth-scopes';
import { protectedResourceMetadataUrl } from './oauth/oauth-metadata';
import { GatewayConfig } from '../config/gateway-config';
import { AUTH_MODE, AuthMode } from '../context/route.decorators';

/**
 * The address limit on failed authentication, then the credentials: who is calling? Each route declares who may; undeclared routes are closed.
 * Failed attempts count against the client address; once its budget is spent, the address gets 429
 * before any credentials are checked.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly agents: AgentAuthenticator,
    private readonly approvers: ApproverAuthenticator,
    private readonly mcpTokens: McpTokenAuthenticator,
    private readonly failures: AuthFailureLimiter,
    private readonly config: GatewayConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const mode = this.reflector.getAllAndOverride<AuthMode | undefined>(AUTH_MODE, [context.getHandler(), context.getClass()]);
    if (mode === 'public') return true;
    const req = context.switchToHttp().getRequest<Request>();
    const ctx = contextOf(req);
    this.failures.refuseIfBlocked(req.ip);
    try {
      const asApprover = mode === 'approver' || (mode === 'agent-or-approver' && req.header('authorization') !== undefined);
      if (asApprover) ctx.approver = this.approvers.authenticate(req);
      else if (mode === 'agent' || mode === 'agent-or-approver') ctx.agent = this.agents.authenticate(req);
      else if (mode === 'mcp-token') await this.mcpCaller(req);
      else throw new Unauthenticated('unauthenticated', 'This endpoint is closed');
    } catch (err) {
      if (err instanceof OAuthNoAgent) ctx.oauth = err.caller;
      // A failed authentication spends the client address's budget, never the claimed agent's.
      if (err instanceof GatewayError && err.httpStatus === 401) await this.failures.recordFailure(req.ip);
      throw err;
    }
    return true;
  }

  /** The MCP door's caller; an OAuth caller's tool calls must also be within its token's scopes (403 with the scope to ask for). */
  private async mcpCaller(req: Request): Promise<void> {
    const ctx = contextOf(req);
    ({ agent: ctx.agent, agentVersion: ctx.agentVersion, oauth: ctx.oauth } = await this.mcpTokens.authenticate(req));
    const tool = ctx.oauth && toolOutOfScope(ctx.oauth, req.body, (name) => this.config.tools.has(name));
    if (tool !== undefined) throw new InsufficientScope(tool, protectedResourceMetadataUrl(this.config.oauth!.resource));
  }
}
