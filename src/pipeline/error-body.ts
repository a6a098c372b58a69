import type { Redactor } from '../redaction/redactor';
import { HttpException } from '@nestjs/common';
import { GatewayError, InternalError, InvalidRequest, NotFound } from '../core/errors';
import type { RequestContext } from '../context/request-context';

/** At most this many `details` go out; `details_total` then says how many there were. */
export const MAX_DETAILS = 20;

export interface ErrorBody {
  success: false;
  status: string;
  reason_code: string;
  error: string;
  audit_id: string;
  request_id?: string;
  details?: unknown[];
  details_total?: number;
}

/** The gateway's error body (ErrorResponseDto), the same for every door: redacted text, bounded details. */
export function errorBody(error: GatewayError, auditId: string, requestId: string | undefined, redactor: Redactor): ErrorBody {
  const details = error.details;
  return {
    success: false,
    status: error.status,
    reason_code: error.reasonCode,
    error: redactor.redactString(error.message),
    audit_id: auditId,
    ...(requestId !== undefined && { request_id: requestId }),
    ...(details !== undefined && { details: redactor.redact(details.slice(0, MAX_DETAILS)) }),
    ...(details !== undefined && details.length > MAX_DETAILS && { details_total: details.length }),
  };
}

/** What any thrown value becomes in an answer: a GatewayError as it is, anything unexpected a bare 500. */
export function toGatewayError(exception: unknown, ctx: RequestContext): GatewayError {
  if (exception instanceof GatewayError) return exception;
  const bodyParserType = (exception as { type?: unknown } | null)?.type;
  if (typeof bodyParserType === 'string') return fromBodyParser(bodyParserType);
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    if (status === 404) return new NotFound('No such endpoint');
    // Nest turns body-parser's SyntaxError into a BadRequestException; nothing else here throws one.
    if (status === 400) return new InvalidRequest('malformed_json', 'Request body is not valid JSON');
    if (status < 500) return new InvalidRequest('invalid_request', exception.message, undefined, status);
  }
  // Name and code only: an unexpected error's message or stack may hold host paths.
  const err = exception as { name?: string; code?: string } | null;
  ctx.unexpectedError = { err_name: err?.name, err_code: err?.code }; // on the request's log line
  return new InternalError();
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
