import { Logger } from '@nestjs/common';
import type { OAuthIssuer } from '../../config/gateway-config';
import { fillSecrets } from '../../kinds/egress/egress';
import type { SecretStore } from '../../secrets/secret-store';
import { ISSUER_FETCH_TIMEOUT_MS, type IssuerFetch } from './oauth-egress';
import { CLOCK_SKEW_S, expiryMs, IssuerUnavailable, OAuthTokenRefused, type VerifiedToken } from './oauth-token';
import { TOKEN_CACHE_MS, TokenCache } from './token-cache';

/** The most introspection requests under way at once; more new tokens meanwhile: 503, the issuer is not flooded. */
export const MAX_INTROSPECTIONS_IN_FLIGHT = 32;
/** A failure to introspect (not a refused token) is logged at most this often. */
const WARN_EVERY_MS = 60_000;

/**
 * Opaque access tokens, checked at the issuer's introspection endpoint (RFC 7662, named in its
 * metadata) as the client configured under the issuer's `introspection` (HTTP Basic; the secret a
 * `${secret:NAME}` read at each request, so a rotation needs no restart). The token must be
 * `active`, of this issuer (when the answer names one), for oauth.resource (`aud`), inside
 * `exp`/`nbf`, and not a refresh token. Its subject is `sub`, or its `client_id` for a token a
 * client got for itself. Answers are cached briefly and bounded; an endpoint that cannot be
 * reached, refuses the gateway's credentials or answers nonsense is 503 issuer_unavailable.
 */
export class TokenIntrospection {
  private readonly logger = new Logger('OAuthIntrospection');
  /** Answers, active or not; while one is being asked for it holds until Infinity (callers share one request). */
  private readonly cache = new TokenCache<Promise<VerifiedToken>>();
  private inFlight = 0;
  private lastWarning = 0;

  constructor(
    private readonly issuer: OAuthIssuer,
    private readonly resource: string,
    private readonly fetch: IssuerFetch,
    private readonly secrets: SecretStore,
    private readonly endpoint: () => Promise<URL>,
  ) {}

  introspect(token: string): Promise<VerifiedToken> {
    const cached = this.cache.get(token);
    if (cached) return cached.value;
    if (this.inFlight >= MAX_INTROSPECTIONS_IN_FLIGHT) return Promise.reject(new IssuerUnavailable());
    const entry = this.cache.set(token, this.ask(token), Infinity);
    entry.value.then(
      (verified) => (entry.until = Math.min(Date.now() + TOKEN_CACHE_MS, expiryMs(verified.claims.exp))),
      (err) => (err instanceof OAuthTokenRefused ? (entry.until = Date.now() + TOKEN_CACHE_MS) : this.cache.delete(token)),
    );
    return entry.value;
  }

  private async ask(token: string): Promise<VerifiedToken> {
    this.inFlight++;
    let answer: Record<string, unknown>;
    try {
      answer = await this.request(token);
    } catch (err) {
      this.warn(err);
      throw new IssuerUnavailable();
    } finally {
      this.inFlight--;
    }
    return this.check(answer);
  }

  private async request(token: string): Promise<Record<string, unknown>> {
    const { client_id, client_secret } = this.issuer.introspection!;
    const secret = await fillSecrets(client_secret, this.secrets);
    const response = await this.fetch(await this.endpoint(), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        // RFC 6749 §2.3.1: the client id and secret are form-encoded before Basic encoding.
        authorization: `Basic ${Buffer.from(`${formEncode(client_id)}:${formEncode(secret)}`).toString('base64')}`,
      },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      signal: AbortSignal.timeout(ISSUER_FETCH_TIMEOUT_MS),
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`the introspection endpoint of ${this.issuer.issuer} answered ${response.status}`);
    }
    const answer: unknown = await response.json();
    if (answer === null || typeof answer !== 'object' || Array.isArray(answer))
      throw new Error(`the introspection endpoint of ${this.issuer.issuer} answered no object`);
    return answer as Record<string, unknown>;
  }

  private check(answer: Record<string, unknown>): VerifiedToken {
    const refuse = (message: string) => new OAuthTokenRefused('invalid_token', message);
    if (answer.active !== true) throw refuse('The token is not active');
    if (answer.iss !== undefined && answer.iss !== this.issuer.issuer) throw refuse("The token's iss claim is not accepted here");
    const audience = typeof answer.aud === 'string' ? [answer.aud] : Array.isArray(answer.aud) ? answer.aud : [];
    if (!audience.includes(this.resource)) throw refuse("The token's aud claim is not accepted here");
    const now = Date.now() / 1000;
    if (typeof answer.exp === 'number' && answer.exp + CLOCK_SKEW_S <= now) throw new OAuthTokenRefused('token_expired', 'This token has expired');
    if (typeof answer.nbf === 'number' && answer.nbf - CLOCK_SKEW_S > now) throw refuse("The token's nbf claim is not accepted here");
    if (typeof answer.token_type === 'string' && !['bearer', 'access_token'].includes(answer.token_type.toLowerCase()))
      throw refuse('The token is not an access token');
    const subject = nonEmpty(answer.sub) ?? nonEmpty(answer.client_id);
    if (subject === undefined) throw refuse('The token names no subject');
    return { issuer: this.issuer, claims: { ...answer, sub: subject } };
  }

  private warn(err: unknown): void {
    if (Date.now() - this.lastWarning < WARN_EVERY_MS) return;
    this.lastWarning = Date.now();
    this.logger.warn(`OAuth token introspection at ${this.issuer.issuer} failed: ${err instanceof Error ? err.message : 'unknown error'}`);
  }
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}
