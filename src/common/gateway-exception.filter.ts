import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { Redactor } from '../audit/redactor';
import { RequestAudit } from '../audit/request-audit';
import { errorBody } from './error-body';
import { GatewayError, InvalidRequest } from './errors';
import { contextOf, REQUEST_ID_PATTERN, RequestContext } from './request-context';

const REQUEST_ID = new RegExp(REQUEST_ID_PATTERN);

/**
 * The one place an error thrown by a route becomes a response: the body of API.md §4, never a
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
    let error = toGatewayError(exception, ctx);
    if (ctx.audited) error = await this.audit.recordRefusal(ctx, error);
    if (res.headersSent) return;
    if (error.headers) res.set(error.headers);
    res.status(error.httpStatus).json(errorBody(error, ctx.auditId, ctx.envelope?.request_id ?? knownRequestId(req.body), this.redactor));
  }
}

export function toGatewayError(exception: unknown, ctx: RequestContext): GatewayError {
  if (exception instanceof GatewayError) return exception;
  const bodyParserType = (exception as { type?: unknown } | null)?.type;
  if (typeof bodyParserType === 'string') return fromBodyParser(bodyParserType);
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    if (status === 404) return new GatewayError(404, 'not_found', 'not_found', 'No such endpoint');
    // Nest turns body-parser's SyntaxError into a BadRequestException; nothing else here throws one.
    if (status === 400) return new InvalidRequest('malformed_json', 'Request body is not valid JSON');
    if (status < 500) return new InvalidRequest('invalid_request', exception.message, undefined, status);
  }
  // Name and code only: an unexpected error's message or stack may hold host paths.
  const err = exception as { name?: string; code?: string } | null;
  ctx.unexpectedError = { err_name: err?.name, err_code: err?.code }; // on the request's log line
  return new GatewayError(500, 'internal_error', 'internal_error', 'Internal error');
}

function fromBodyParser(type: string): GatewayError {
  switch (type) {
    case 'entity.parse.failed':
      return new InvalidRequest('malformed_json', 'Request body is not valid JSON');
    case 'entity.too.large':
      return new InvalidRequest('body_too_large', 'Request body exceeds max_body_bytes', undefined, 413);
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new InvalidRequest('unsupported_media_type', 'Body must be uncompressed UTF-8 JSON', undefined, 415);
    default:
      return new InvalidRequest('invalid_request', 'Request body could not be read');
  }
}

function knownRequestId(body: unknown): string | undefined {
  const id = (body as { request_id?: unknown } | null)?.request_id;
  return typeof id === 'string' && REQUEST_ID.test(id) ? id : undefined;
}
