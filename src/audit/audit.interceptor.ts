import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { Request, Response } from 'express';
import { concatMap, from, Observable, switchMap } from 'rxjs';
import { contextOf } from '../common/request-context';
import { RequestAudit } from './request-audit';

/**
 * Records the decision before the handler runs anything, and the outcome after, timing the call.
 * The response leaves only once its records are written (fail closed: 503 otherwise).
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  constructor(private readonly audit: RequestAudit) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<Request>();
    if (!this.audit.isAudited(req)) return next.handle();
    const res = context.switchToHttp().getResponse<Response>();
    const ctx = contextOf(req);
    return from(this.audit.recordDecision(req, ctx)).pipe(
      switchMap(() => next.handle()),
      concatMap(async (body: unknown) => {
        await this.audit.recordSuccess(req, ctx, res.statusCode, body);
        return body;
      }),
    );
  }
}
