import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AuditUnavailable } from '../audit/audit-log.service';
import { Redactor } from '../audit/redactor';
import { RequestAudit } from '../audit/request-audit';
import { Idempotency, StoredReplay } from '../auth/idempotency.service';
import { GatewayError, InvalidRequest } from './errors';
import { contextOf, REQUEST_ID_PATTERN, RequestContext } from './request-context';

const REQUEST_ID = new RegExp(REQUEST_ID_PATTERN);

/**
 * The one place an error becomes a response: the body of API.md §4, never a stack trace. It also
 * records refusals in the audit log, since guards run before the audit interceptor; a refusal that
 * cannot be recorded is answered 503 audit_unavailable.
 */
@Catch()
export class GatewayExceptionFilter implements ExceptionFilter {
  constructor(
    private readonly audit: RequestAudit,
    private readonly redactor: Redactor,
    private readonly idempotency: Idempotency,
  ) {}

  async catch(exception: unknown, host: ArgumentsHost): Promise<void> {
    const http = host.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();
    const ctx = contextOf(req);
    if (exception instanceof StoredReplay) return this.replay(host, exception);
    let error = toGatewayError(exception, ctx);
    if (this.audit.isAudited(req)) {
      try {
        await this.audit.recordFailure(req, ctx, error);
      } catch {
        error = new AuditUnavailable();
      }
    }
    if (res.headersSent) return;

    const requestId = ctx.envelope?.request_id ?? knownRequestId(req.body);
    const body = {
      success: false,
      status: error.status,
      reason_code: error.reasonCode,
      error: this.redactor.redactString(error.message),
      audit_id: ctx.auditId,
      ...(requestId !== undefined && { request_id: requestId }),
      ...(error.details !== undefined && { details: this.redactor.redact(error.details) }),
    };
    await this.idempotency.settle(ctx, error.httpStatus, body);
    res.status(error.httpStatus).json(body);
  }

  /** The first answer to this (agent_id, request_id), again; nothing runs and no quota is spent. */
  private async replay(host: ArgumentsHost, replay: StoredReplay): Promise<void> {
    const req = host.switchToHttp().getRequest<Request>();
    const res = host.switchToHttp().getResponse<Response>();
    try {
      await this.audit.recordReplay(req, contextOf(req), replay.status);
    } catch {
      return this.catch(new AuditUnavailable(), host);
    }
    res.status(replay.status).setHeader('Idempotent-Replayed', 'true').json(replay.body);
  }
}

function toGatewayError(exception: unknown, ctx: RequestContext): GatewayError {
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
