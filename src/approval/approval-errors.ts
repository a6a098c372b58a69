import { GatewayError } from '../core/errors';

/** 429: the agent already holds settings.max_pending_approvals_per_agent pending approvals. */
export class TooManyPending extends GatewayError {
  constructor(max: number) {
    super(429, 'rate_limited', 'too_many_pending', `This agent already has ${max} approvals pending`);
  }
}

/** 410: nobody decided before approval_ttl_s ran out. */
export class ApprovalExpired extends GatewayError {
  constructor() {
    super(410, 'expired', 'expired', 'This approval expired before it was decided');
  }
}

/** 409: another decision (or the lease rule) came first. */
export class AlreadyDecided extends GatewayError {
  constructor(status: string) {
    super(409, 'conflict', 'already_decided', `This approval was already decided (${status})`);
  }
}

/** 409: the stored envelope no longer matches its SHA-256; nothing runs. */
export class EnvelopeMismatch extends GatewayError {
  constructor() {
    super(409, 'conflict', 'envelope_mismatch', 'The stored call does not match what was asked; not executed');
  }
}

/** 409: the claim lapsed before the call ran (another instance marked it failed); nothing runs. */
export class ClaimLapsed extends GatewayError {
  constructor() {
    super(409, 'conflict', 'claim_lapsed', 'This approval was held past its lease before it ran and was marked failed; it was not executed');
  }
}

/** 503 after an approved call ran: its outcome could not be stored. Unlike other 503s, something was done. */
export class OutcomeNotStored extends GatewayError {
  constructor() {
    super(
      503,
      'database_unavailable',
      'outcome_unrecorded',
      'The call ran, but its outcome could not be stored; check what it did before asking for it again. The approval reads approved, then failed (interrupted).',
    );
  }
}
