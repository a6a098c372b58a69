import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { createRemoteJWKSet, customFetch, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { GatewayError } from '../../core/errors';
import { GatewayConfig, OAuthIssuer } from '../../config/gateway-config';
import { isHttpsOrLoopback } from '../../config/config.loader';
import { targetProblem } from '../../config/url-rules';
import { EgressPools } from '../../kinds/egress/egress';
import { issuerFetch, IssuerUnreachable } from './oauth-egress';

/**
 * Signature algorithms an access token may use: asymmetric only. Never `none`, never HMAC (a key
 * set's public key used as an HMAC secret would let anyone sign).
 */
export const ALLOWED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
/** `exp` and `nbf` are checked with this much leeway for clocks that disagree. */
export const CLOCK_SKEW_S = 30;
/** Discovery and key-set fetches give up after this long. */
const FETCH_TIMEOUT_MS = 5000;
/** A failed discovery is tried again after this long, not for every token meanwhile. */
const DISCOVERY_RETRY_MS = 5000;

/** jose's codes for a token that is wrong in itself (401); any other failure is the issuer's (503). */
const TOKEN_PROBLEMS = new Set([
  'ERR_JWT_EXPIRED',
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWT_INVALID',
  'ERR_JWS_INVALID',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
]);

/** A token the door refuses (401): it is not one of an accepted issuer for this resource, valid now. */
export class OAuthTokenRefused extends Error {
  constructor(
    readonly reasonCode: 'invalid_token' | 'token_expired',
    message: string,
  ) {
    super(message);
  }
}

/** 503: the issuer's metadata or key set cannot be read, so a new token cannot be checked (never let through). */
export class IssuerUnavailable extends GatewayError {
  constructor() {
    super(503, 'unavailable', 'issuer_unavailable', "The token's issuer cannot be reached to check it (its metadata or key set); try again later");
  }
}

/** A token that checked out: its issuer (as configured) and its claims. */
export interface VerifiedToken {
  issuer: OAuthIssuer;
  claims: JWTPayload & Record<string, unknown>;
}

type KeySet = ReturnType<typeof createRemoteJWKSet>;

/**
 * Checks OAuth access tokens (JWTs, RFC 9068) for the MCP door with jose: the `iss` a configured
 * issuer, signed by a key of that issuer's key set (found through its metadata at
 * {issuer}/.well-known/openid-configuration, or oauth-authorization-server) with an allowed
 * algorithm, `aud` holding oauth.resource, inside `exp`/`nbf`. Key sets are cached by jose and
 * fetched again for an unknown `kid` (at most every 30 s); every fetch goes through the issuer's
 * egress rule and times out.
 */
@Injectable()
export class OAuthVerifier implements OnModuleDestroy {
  private readonly issuers: ReadonlyMap<string, OAuthIssuer>;
  private readonly keySets = new Map<string, Promise<KeySet>>();
  private readonly pools = new EgressPools();

  constructor(private readonly config: GatewayConfig) {
    this.issuers = new Map((config.oauth?.issuers ?? []).map((issuer) => [issuer.issuer, issuer]));
  }

  get enabled(): boolean {
    return this.config.oauth !== undefined;
  }

  /** Three base64url parts: a JWT (static MCP tokens never have a dot). */
  static looksLikeJwt(token: string): boolean {
    return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
  }

  async verify(token: string): Promise<VerifiedToken> {
    const resource = this.config.oauth?.resource;
    if (resource === undefined) throw new OAuthTokenRefused('invalid_token', 'Unknown token');
    let iss: unknown;
    try {
      const header = decodeProtectedHeader(token);
      if (typeof header.alg !== 'string' || !ALLOWED_ALGORITHMS.includes(header.alg))
        throw new OAuthTokenRefused('invalid_token', 'The token is not signed with an allowed algorithm');
      iss = decodeJwt(token).iss;
    } catch (err) {
      if (err instanceof OAuthTokenRefused) throw err;
      throw new OAuthTokenRefused('invalid_token', 'The token is not a well-formed JWT');
    }
    const issuer = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    if (!issuer) throw new OAuthTokenRefused('invalid_token', 'The token was not issued by an accepted issuer');
    const keys = await this.keySetOf(issuer);
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: issuer.issuer,
        audience: resource,
        algorithms: ALLOWED_ALGORITHMS,
        clockTolerance: CLOCK_SKEW_S,
        requiredClaims: ['exp', 'sub'],
      });
      if (typeof payload.sub !== 'string' || payload.sub === '') throw new OAuthTokenRefused('invalid_token', 'The token names no subject');
      return { issuer, claims: payload };
    } catch (err) {
      if (err instanceof OAuthTokenRefused) throw err;
      throw refusalOf(err);
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.pools.close();
  }

  /** The issuer's key set, once its metadata named it; a failed discovery is forgotten after a moment. */
  private keySetOf(issuer: OAuthIssuer): Promise<KeySet> {
    let keySet = this.keySets.get(issuer.issuer);
    if (!keySet) {
      keySet = this.discover(issuer);
      this.keySets.set(issuer.issuer, keySet);
      keySet.catch(() => setTimeout(() => this.keySets.delete(issuer.issuer), DISCOVERY_RETRY_MS).unref());
    }
    return keySet.catch(() => {
      throw new IssuerUnavailable();
    });
  }

  private async discover(issuer: OAuthIssuer): Promise<KeySet> {
    const fetch = issuerFetch(issuer, this.pools);
    let metadata: Record<string, unknown> | undefined;
    for (const url of metadataUrls(issuer.issuer)) {
      const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (response.status === 200) {
        metadata = (await response.json()) as Record<string, unknown>;
        break;
      }
      await response.body?.cancel();
    }
    if (!metadata) throw new IssuerUnreachable(`No metadata found for issuer ${issuer.issuer}`);
    // RFC 8414 §3.3: the metadata must name the issuer it was asked for.
    if (metadata.issuer !== issuer.issuer) throw new IssuerUnreachable(`The metadata of ${issuer.issuer} names another issuer`);
    if (typeof metadata.jwks_uri !== 'string') throw new IssuerUnreachable(`The metadata of ${issuer.issuer} has no jwks_uri`);
    const jwksUri = new URL(metadata.jwks_uri);
    const problem = isHttpsOrLoopback(jwksUri) ? targetProblem(jwksUri, issuer.allowed_hosts) : 'must be https';
    if (problem) throw new IssuerUnreachable(`The jwks_uri of ${issuer.issuer}: ${problem}`);
    return createRemoteJWKSet(jwksUri, { timeoutDuration: FETCH_TIMEOUT_MS, cooldownDuration: 30_000, cacheMaxAge: 600_000, [customFetch]: fetch });
  }
}

/** Where an issuer's metadata may be: OpenID Connect Discovery, then RFC 8414 (the well-known part before the issuer's path). */
export function metadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  return [`${url.origin}${path}/.well-known/openid-configuration`, `${url.origin}/.well-known/oauth-authorization-server${path}`];
}

function refusalOf(err: unknown): Error {
  if (err instanceof errors.JWTExpired) return new OAuthTokenRefused('token_expired', 'This token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) return new OAuthTokenRefused('invalid_token', `The token's ${err.claim} claim is not accepted here`);
  if (err instanceof errors.JOSEError && TOKEN_PROBLEMS.has(err.code)) return new OAuthTokenRefused('invalid_token', 'The token is not valid');
  return new IssuerUnavailable();
}
