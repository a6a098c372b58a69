import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { Unauthenticated } from '../common/errors';
import { contextOf } from '../common/request-context';
import { AgentAuthenticator } from './agent-authenticator';
import { ApproverAuthenticator } from './approver-authenticator';
import { AUTH_MODE, AuthMode } from './auth.decorators';

/** API.md §4 row 3: who is calling? Each route declares who may; undeclared routes are closed. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly agents: AgentAuthenticator,
    private readonly approvers: ApproverAuthenticator,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const mode = this.reflector.getAllAndOverride<AuthMode | undefined>(AUTH_MODE, [context.getHandler(), context.getClass()]);
    if (mode === 'public') return true;
    const req = context.switchToHttp().getRequest<Request>();
    const ctx = contextOf(req);
    const asApprover = mode === 'approver' || (mode === 'agent-or-approver' && req.header('authorization') !== undefined);
    if (asApprover) ctx.approver = this.approvers.authenticate(req);
    else if (mode === 'agent' || mode === 'agent-or-approver') ctx.agent = this.agents.authenticate(req);
    else throw new Unauthenticated('unauthenticated', 'This endpoint is closed');
    return true;
  }
}
