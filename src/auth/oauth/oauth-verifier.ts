import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { createRemoteJWKSet, customFetch, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { GatewayConfig, OAuthIssuer } from '../../config/gateway-config';
import { isHttpsOrLoopback } from '../../config/config.loader';
import { targetProblem } from '../../config/url-rules';
import { EgressPools } from '../../kinds/egress/egress';
import { SecretStore } from '../../secrets/secret-store';
import { ISSUER_FETCH_TIMEOUT_MS, issuerFetch, IssuerUnreachable } from './oauth-egress';
import { TokenIntrospection } from './oauth-introspection';
import { CLOCK_SKEW_S, expiryMs, IssuerUnavailable, OAuthTokenRefused, type VerifiedToken } from './oauth-token';
import { TOKEN_CACHE_MS, TokenCache } from './token-cache';

/**
 * Signature algorithms an access token may use: asymmetric only. Never `none`, never HMAC (a key
 * set's public key used as an HMAC secret would let anyone sign).
 */
export const ALLOWED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
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

type KeySet = ReturnType<typeof createRemoteJWKSet>;
type IssuerMetadata = Record<string, unknown>;

/**
 * Checks OAuth access tokens for the MCP door. A JWT (RFC 9068) is checked here with jose: the
 * `iss` a configured issuer, signed by a key of that issuer's key set (found through its metadata
 * at {issuer}/.well-known/openid-configuration, or oauth-authorization-server) with an allowed
 * algorithm, `aud` holding oauth.resource, inside `exp`/`nbf`. Key sets are cached by jose and
 * fetched again for an unknown `kid` (at most every 30 s). A JWT that checked out is not checked
 * again until its `exp`, for at most TOKEN_CACHE_MS (the signature check, on the thread pool, is
 * the costly part of a call that repeats its token). Any other token is asked about at the
 * introspection endpoint of the one issuer configured for it (TokenIntrospection), if any. Every
 * fetch goes through the issuer's egress rule and times out.
 */
@Injectable()
export class OAuthVerifier implements OnModuleDestroy {
  private readonly issuers: ReadonlyMap<string, OAuthIssuer>;
  private readonly metadata = new Map<string, Promise<IssuerMetadata>>();
  private readonly keySets = new Map<string, Promise<KeySet>>();
  private readonly pools = new EgressPools();
  private readonly introspection?: TokenIntrospection;
  private readonly verified = new TokenCache<VerifiedToken>();

  constructor(
    private readonly config: GatewayConfig,
    secrets: SecretStore,
  ) {
    this.issuers = new Map((config.oauth?.issuers ?? []).map((issuer) => [issuer.issuer, issuer]));
    const introspecting = config.oauth?.issuers.find((issuer) => issuer.introspection !== undefined);
    if (introspecting && config.oauth)
      this.introspection = new TokenIntrospection(introspecting, config.oauth.resource, issuerFetch(introspecting, this.pools), secrets, async () =>
        endpointOf(introspecting, await this.metadataOf(introspecting), 'introspection_endpoint'),
      );
  }

  get enabled(): boolean {
    return this.config.oauth !== undefined;
  }

  /** Three base64url parts: a JWT (static MCP tokens never have a dot). */
  static looksLikeJwt(token: string): boolean {
    return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
  }

  /** Whether `token` may be an access token to check: a JWT, or any token when an issuer introspects opaque ones. */
  accepts(token: string): boolean {
    return this.enabled && (OAuthVerifier.looksLikeJwt(token) || this.introspection !== undefined);
  }

  async verify(token: string): Promise<VerifiedToken> {
    if (!OAuthVerifier.looksLikeJwt(token)) {
      if (this.introspection) return this.introspection.introspect(token);
      throw new OAuthTokenRefused('invalid_token', 'Unknown token');
    }
    const resource = this.config.oauth?.resource;
    if (resource === undefined) throw new OAuthTokenRefused('invalid_token', 'Unknown token');
    const cached = this.verified.get(token);
    if (cached) return cached.value;
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
      const verified = { issuer, claims: payload };
      this.verified.set(token, verified, Math.min(Date.now() + TOKEN_CACHE_MS, expiryMs(payload.exp)));
      return verified;
    } catch (err) {
      if (err instanceof OAuthTokenRefused) throw err;
      throw refusalOf(err);
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.pools.close();
  }

  /** The issuer's metadata, fetched once; a failed discovery is forgotten after a moment. */
  private metadataOf(issuer: OAuthIssuer): Promise<IssuerMetadata> {
    return remembered(this.metadata, issuer, () => this.discover(issuer));
  }

  /** The issuer's key set, once its metadata named it. */
  private keySetOf(issuer: OAuthIssuer): Promise<KeySet> {
    return remembered(this.keySets, issuer, async () => {
      const jwksUri = endpointOf(issuer, await this.metadataOf(issuer), 'jwks_uri');
      return createRemoteJWKSet(jwksUri, {
        timeoutDuration: ISSUER_FETCH_TIMEOUT_MS,
        cooldownDuration: 30_000,
        cacheMaxAge: 600_000,
        [customFetch]: issuerFetch(issuer, this.pools),
      });
    });
  }

  private async discover(issuer: OAuthIssuer): Promise<IssuerMetadata> {
    const fetch = issuerFetch(issuer, this.pools);
    for (const url of metadataUrls(issuer.issuer)) {
      const response = await fetch(url, { signal: AbortSignal.timeout(ISSUER_FETCH_TIMEOUT_MS) });
      if (response.status === 200) {
        const metadata = (await response.json()) as IssuerMetadata;
        // RFC 8414 §3.3: the metadata must name the issuer it was asked for.
        if (metadata?.issuer !== issuer.issuer) throw new IssuerUnreachable(`The metadata of ${issuer.issuer} names another issuer`);
        return metadata;
      }
      await response.body?.cancel();
    }
    throw new IssuerUnreachable(`No metadata found for issuer ${issuer.issuer}`);
  }
}

/**
 * `make()` for this issuer, once: kept while it holds, forgotten DISCOVERY_RETRY_MS after it fails.
 * A failure is the issuer's (503), never a pass.
 */
function remembered<T>(cache: Map<string, Promise<T>>, issuer: OAuthIssuer, make: () => Promise<T>): Promise<T> {
  let value = cache.get(issuer.issuer);
  if (!value) {
    value = make();
    cache.set(issuer.issuer, value);
    value.catch(() => setTimeout(() => cache.delete(issuer.issuer), DISCOVERY_RETRY_MS).unref());
  }
  return value.catch(() => {
    throw new IssuerUnavailable();
  });
}

/** An endpoint the issuer's metadata names: over https (or on loopback), on one of the issuer's allowed hosts. */
function endpointOf(issuer: OAuthIssuer, metadata: IssuerMetadata, name: 'jwks_uri' | 'introspection_endpoint'): URL {
  const value = metadata[name];
  if (typeof value !== 'string' || !URL.canParse(value)) throw new IssuerUnreachable(`The metadata of ${issuer.issuer} has no ${name}`);
  const url = new URL(value);
  const problem = isHttpsOrLoopback(url) ? targetProblem(url, issuer.allowed_hosts) : 'must be https';
  if (problem) throw new IssuerUnreachable(`The ${name} of ${issuer.issuer}: ${problem}`);
  return url;
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
