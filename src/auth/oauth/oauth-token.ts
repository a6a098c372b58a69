import type { JWTPayload } from 'jose';
import { GatewayError } from '../../core/errors';
import type { OAuthIssuer } from '../../config/gateway-config';

/** `exp` and `nbf` are checked with this much leeway for clocks that disagree. */
export const CLOCK_SKEW_S = 30;

/** A token the door refuses (401): it is not one of an accepted issuer for this resource, valid now. */
export class OAuthTokenRefused extends Error {
  constructor(
    readonly reasonCode: 'invalid_token' | 'token_expired',
    message: string,
  ) {
    super(message);
  }
}

/** 503: the issuer's metadata, key set or introspection endpoint cannot be used, so a new token cannot be checked (never let through). */
export class IssuerUnavailable extends GatewayError {
  constructor() {
    super(
      503,
      'unavailable',
      'issuer_unavailable',
      "The token's issuer cannot be reached to check it (its metadata, key set or introspection); try again later",
    );
  }
}

/** A token that checked out: its issuer (as configured) and its claims (of the JWT, or the introspection answer). */
export interface VerifiedToken {
  issuer: OAuthIssuer;
  claims: JWTPayload & Record<string, unknown>;
}

/** Unix ms of a token's `exp` claim (Infinity without one). */
export function expiryMs(exp: unknown): number {
  return typeof exp === 'number' ? exp * 1000 : Infinity;
}
