import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { Request, Response } from 'express';
import { concatMap, Observable } from 'rxjs';
import { contextOf } from '../common/request-context';
import { Idempotency } from './idempotency.service';

/** Stores a successful call's answer for replays before it is sent (errors: the exception filter). */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(private readonly idempotency: Idempotency) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const ctx = contextOf(context.switchToHttp().getRequest<Request>());
    const res = context.switchToHttp().getResponse<Response>();
    return next.handle().pipe(
      concatMap(async (body: unknown) => {
        await this.idempotency.settle(ctx, res.statusCode, body);
        return body;
      }),
    );
  }
}
