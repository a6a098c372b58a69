/**
 * Domain errors. Services throw these; GatewayExceptionFilter turns them into the error body
 * (ErrorResponseDto). The message is shown to the caller, so it never holds a secret or a host path.
 */
export class GatewayError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly status: string,
    readonly reasonCode: string,
    message: string,
    readonly details?: unknown[],
    /** Response headers that belong to this refusal (`Retry-After`, `WWW-Authenticate`). */
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidRequest extends GatewayError {
  constructor(reasonCode: string, message: string, details?: unknown[], httpStatus = 400) {
    super(httpStatus, 'invalid_request', reasonCode, message, details);
  }
}

export class Unauthenticated extends GatewayError {
  constructor(reasonCode: string, message: string) {
    super(401, 'unauthenticated', reasonCode, message);
  }
}

export class PolicyDenied extends GatewayError {
  constructor(reasonCode: string, message: string, details?: unknown[]) {
    super(403, 'denied', reasonCode, message, details);
  }
}

export class ArgumentsInvalid extends GatewayError {
  constructor(details: unknown[]) {
    super(400, 'invalid_arguments', 'invalid_arguments', 'Arguments do not match the tool input_schema', details);
  }
}

export class NotFound extends GatewayError {
  constructor(message = 'Not found') {
    super(404, 'not_found', 'not_found', message);
  }
}

export class ToolFailed extends GatewayError {
  constructor(message: string) {
    super(502, 'tool_error', 'tool_error', message);
  }
}

export class ToolTimeout extends GatewayError {
  constructor(timeoutMs: number) {
    super(504, 'tool_timeout', 'tool_timeout', `Tool did not finish within ${timeoutMs} ms`);
  }
}

/** 429: a limit is spent; `Retry-After` says, in whole seconds, how long to wait. */
export class RateLimited extends GatewayError {
  constructor(message: string, retryAfterS: number, reasonCode = 'rate_limited') {
    super(429, 'rate_limited', reasonCode, message, undefined, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterS))) });
  }
}

/** 503: the store behind the limits or the replay keys cannot be reached (fail closed). */
export class LimitsUnavailable extends GatewayError {
  constructor(reasonCode = 'rate_limit_store_unavailable', what = 'The rate-limit store') {
    super(503, 'rate_limit_unavailable', reasonCode, `${what} cannot be reached; the call was refused`);
  }
}

/**
 * 503 after the tool may have run: its outcome could not be put on record. Unlike
 * audit_unavailable ("nothing was executed"), this says the truth: do not assume it did not run.
 */
export class OutcomeUnrecorded extends GatewayError {
  constructor() {
    super(
      503,
      'audit_unavailable',
      'outcome_unrecorded',
      'The call may have run, but its outcome could not be written to the audit log; check before retrying with a new request_id',
    );
  }
}

/** 500: something the gateway did not expect; the answer says no more (its log line names the error). */
export class InternalError extends GatewayError {
  constructor() {
    super(500, 'internal_error', 'internal_error', 'Internal error');
  }
}
