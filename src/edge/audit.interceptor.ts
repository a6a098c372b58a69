import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { concatMap, Observable } from 'rxjs';
import { RequestAudit } from '../audit/request-audit';
import { PIPELINE_RECORDED } from '../context/route.decorators';
import { contextOf } from '../context/request-context';

/**
 * The success path's counterpart of GatewayExceptionFilter for audited routes other than tool
 * calls (approval listings and views, audit queries): the answer leaves only once its record is
 * written (fail closed: 503 otherwise). Tool calls and approvers' decisions are recorded step by
 * step by the ToolCallPipeline.
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    private readonly audit: RequestAudit,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<Request>();
    const ctx = contextOf(req);
    if (!ctx.audited || this.reflector.get<boolean>(PIPELINE_RECORDED, context.getHandler())) return next.handle();
    const res = context.switchToHttp().getResponse<Response>();
    return next.handle().pipe(
      concatMap(async (body: unknown) => {
        await this.audit.recordRequest(ctx, res.statusCode, body ?? {});
        return body;
      }),
    );
  }
}
