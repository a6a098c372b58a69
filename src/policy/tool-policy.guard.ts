import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { TOOL_CALL } from '../auth/auth.decorators';
import { contextOf } from '../common/request-context';
import { PolicyService } from './policy.service';

/** API.md §4 rows 7–12: may this agent make this call? */
@Injectable()
export class ToolPolicyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly policy: PolicyService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (!this.reflector.get<boolean>(TOOL_CALL, context.getHandler())) return true;
    const ctx = contextOf(context.switchToHttp().getRequest<Request>());
    ctx.decision = await this.policy.evaluate(ctx.agent!, ctx.envelope!);
    return true;
  }
}
