import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { Request, Response } from 'express';
import { concatMap, from, Observable, switchMap } from 'rxjs';
import { RequestAudit } from '../audit/request-audit';
import { Idempotency } from '../auth/idempotency.service';
import { contextOf } from './request-context';

/**
 * The success path's counterpart of GatewayExceptionFilter: records the decision before the
 * handler runs anything and the outcome after, then keeps the answer for replays. The response
 * leaves only once its records are written (fail closed: 503 otherwise), and a replay can only
 * ever hand out an answer that is on record. One interceptor, not one per step: each costs Nest
 * an async-context binding and an rxjs chain per request.
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  constructor(
    private readonly audit: RequestAudit,
    private readonly idempotency: Idempotency,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<Request>();
    if (!this.audit.isAudited(req)) return next.handle();
    const res = context.switchToHttp().getResponse<Response>();
    const ctx = contextOf(req);
    return from(this.audit.recordDecision(req, ctx)).pipe(
      switchMap(() => next.handle()),
      concatMap(async (body: unknown) => {
        await this.audit.recordSuccess(req, ctx, res.statusCode, body);
        await this.idempotency.settle(ctx, res.statusCode, body);
        return body;
      }),
    );
  }
}
