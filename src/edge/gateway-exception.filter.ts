import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { Redactor } from '../redaction/redactor';
import { RequestAudit } from '../audit/request-audit';
import { errorBody, toGatewayError } from '../pipeline/error-body';
import { contextOf, REQUEST_ID_PATTERN } from '../context/request-context';
import { traceRefusal, tracingOn } from '../telemetry/tracing';

const REQUEST_ID = new RegExp(REQUEST_ID_PATTERN);

/**
 * The one place an error thrown by a route becomes a response: the gateway's error body (ErrorResponseDto), never a
 * stack trace. For an audited route it also records the refusal (guards run before anything else
 * records); a refusal that cannot be recorded is answered 503 audit_unavailable. Tool calls are
 * answered by the pipeline, which records and shapes its own refusals the same way.
 */
@Catch()
export class GatewayExceptionFilter implements ExceptionFilter {
  constructor(
    private readonly audit: RequestAudit,
    private readonly redactor: Redactor,
  ) {}

  async catch(exception: unknown, host: ArgumentsHost): Promise<void> {
    const http = host.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();
    const ctx = contextOf(req);
    const refusal = toGatewayError(exception, ctx);
    const record = async () => (ctx.audited ? this.audit.recordRefusal(ctx, refusal) : refusal);
    // Tracing on: a request refused before its tool call began (an authentication failure) has a span too.
    const error = await (tracingOn() ? traceRefusal(req, ctx, record) : record());
    if (res.headersSent) return;
    try {
      if (error.headers) res.set(error.headers);
    } catch {
      // A header value Node refuses must never turn a refusal into an unhandled rejection: answered without it.
    }
    res.status(error.httpStatus).json(errorBody(error, ctx.auditId, ctx.envelope?.request_id ?? knownRequestId(req.body), this.redactor));
  }
}

function knownRequestId(body: unknown): string | undefined {
  const id = (body as { request_id?: unknown } | null)?.request_id;
  return typeof id === 'string' && REQUEST_ID.test(id) ? id : undefined;
}
