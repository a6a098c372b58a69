import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { contextOf } from '../common/request-context';
import { bodySha256Of } from './body-hash';
import { TOOL_CALL } from './auth.decorators';
import { Idempotency } from './idempotency.service';

/** API.md §4 row 5: seen this request_id? Before the rate limit, so a replay costs no quota. */
@Injectable()
export class ReplayGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly idempotency: Idempotency,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (!this.reflector.get<boolean>(TOOL_CALL, context.getHandler())) return true;
    const req = context.switchToHttp().getRequest<Request & { rawBody?: Buffer }>();
    await this.idempotency.claim(contextOf(req), bodySha256Of(req));
    return true;
  }
}
