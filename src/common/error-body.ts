import type { Redactor } from '../audit/redactor';
import type { GatewayError } from './errors';

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

/** The error body of API.md §4, the same for every door: redacted text, bounded details. */
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
