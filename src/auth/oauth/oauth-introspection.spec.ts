import type { GatewayConfig, OAuthIssuer } from '../../config/gateway-config';
import { SecretStore } from '../../secrets/secret-store';
import type { IssuerFetch } from './oauth-egress';
import { MAX_INTROSPECTIONS_IN_FLIGHT, TokenIntrospection } from './oauth-introspection';
import { TOKEN_CACHE_ENTRIES } from './token-cache';
import { IssuerUnavailable, OAuthTokenRefused } from './oauth-token';

// How TokenIntrospection spares the issuer: one request per token while it is asked about, answers
// kept (active or not, never a failure), at most TOKEN_CACHE_ENTRIES of them, and no more
// than MAX_INTROSPECTIONS_IN_FLIGHT requests at once. The issuer's endpoint is a function answering
// as oidc-provider does (the e2e test runs the real one).

const ISSUER: OAuthIssuer = {
  issuer: 'https://idp.example',
  allowed_hosts: ['idp.example'],
  allow_private_networks: false,
  introspection: { client_id: 'agent-gateway', client_secret: '${secret:INTROSPECTION}' },
};
const RESOURCE = 'https://gw.example/mcp';
process.env.OAUTH_SPEC_INTROSPECTION_SECRET = 'spec-secret';
const secrets = new SecretStore({
  agents: new Map(),
  secrets: { INTROSPECTION: { from: 'env', name: 'OAUTH_SPEC_INTROSPECTION_SECRET' } },
} as unknown as GatewayConfig);

/** An introspection endpoint that counts what it is asked: `active-*` tokens are active, others not. */
function endpoint(answer: (token: string) => Promise<Response> | Response = activeAnswer) {
  const asked: string[] = [];
  const credentials = new Set<string | undefined>();
  const fetch = (async (_url: string | URL, init?: { body?: string; headers?: Record<string, string> }) => {
    credentials.add(init?.headers?.authorization);
    const token = new URLSearchParams(init?.body).get('token')!;
    asked.push(token);
    return answer(token);
  }) as unknown as IssuerFetch;
  const introspection = new TokenIntrospection(ISSUER, RESOURCE, fetch, secrets, async () => new URL('https://idp.example/token/introspection'));
  return { introspection, asked, credentials };
}

function activeAnswer(token: string): Response {
  const body = token.startsWith('active-')
    ? { active: true, client_id: 'bot', aud: RESOURCE, iss: ISSUER.issuer, exp: Math.floor(Date.now() / 1000) + 300, token_type: 'Bearer' }
    : { active: false };
  return Response.json(body);
}

describe('TokenIntrospection', () => {
  it('asks once for a token many callers present at the same time, and answers the next caller from what it kept', async () => {
    const { introspection, asked, credentials } = endpoint();
    const answers = await Promise.all([1, 2, 3].map(() => introspection.introspect('active-a')));
    expect(answers.map((a) => a.claims.sub)).toEqual(['bot', 'bot', 'bot']);
    await introspection.introspect('active-a');
    expect(asked).toEqual(['active-a']);
    expect([...credentials]).toEqual([`Basic ${Buffer.from('agent-gateway:spec-secret').toString('base64')}`]);
  });

  it('keeps a "not active" answer as well, but never a failure to ask', async () => {
    let down = true;
    const { introspection, asked } = endpoint((token) => (down ? new Response('', { status: 500 }) : activeAnswer(token)));
    await expect(introspection.introspect('active-b')).rejects.toBeInstanceOf(IssuerUnavailable);
    down = false;
    await expect(introspection.introspect('active-b')).resolves.toMatchObject({ claims: { sub: 'bot' } });
    await expect(introspection.introspect('revoked')).rejects.toBeInstanceOf(OAuthTokenRefused);
    await expect(introspection.introspect('revoked')).rejects.toBeInstanceOf(OAuthTokenRefused);
    expect(asked).toEqual(['active-b', 'active-b', 'revoked']);
  });

  it(`keeps at most ${TOKEN_CACHE_ENTRIES} answers, forgetting the oldest first`, async () => {
    const { introspection, asked } = endpoint();
    for (let i = 0; i <= TOKEN_CACHE_ENTRIES; i++) await introspection.introspect(`active-${i}`);
    await introspection.introspect(`active-${TOKEN_CACHE_ENTRIES}`);
    expect(asked).toHaveLength(TOKEN_CACHE_ENTRIES + 1);
    await introspection.introspect('active-0');
    expect(asked).toHaveLength(TOKEN_CACHE_ENTRIES + 2);
  });

  it(`asks about at most ${MAX_INTROSPECTIONS_IN_FLIGHT} tokens at once; more meanwhile are 503, not queued at the issuer`, async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { introspection, asked } = endpoint(async (token) => {
      await held;
      return activeAnswer(token);
    });
    const pending = Array.from({ length: MAX_INTROSPECTIONS_IN_FLIGHT }, (_, i) => introspection.introspect(`active-held-${i}`));
    await new Promise((resolve) => setImmediate(resolve));
    await expect(introspection.introspect('active-one-more')).rejects.toBeInstanceOf(IssuerUnavailable);
    release();
    await Promise.all(pending);
    expect(asked).toHaveLength(MAX_INTROSPECTIONS_IN_FLIGHT);
    await expect(introspection.introspect('active-one-more')).resolves.toBeDefined();
  });

  it.each([
    ['for another resource', { active: true, client_id: 'bot', aud: 'https://other.example/mcp' }, 'invalid_token'],
    ['of another issuer', { active: true, client_id: 'bot', aud: RESOURCE, iss: 'https://evil.example' }, 'invalid_token'],
    ['expired', { active: true, client_id: 'bot', aud: RESOURCE, exp: Math.floor(Date.now() / 1000) - 120 }, 'token_expired'],
    ['a refresh token', { active: true, client_id: 'bot', aud: RESOURCE, token_type: 'refresh_token' }, 'invalid_token'],
    ['naming nobody', { active: true, aud: [RESOURCE] }, 'invalid_token'],
  ])('refuses an active token %s', async (_what, answer, reasonCode) => {
    const { introspection } = endpoint(() => Response.json(answer));
    await expect(introspection.introspect('active-x')).rejects.toMatchObject({ reasonCode });
  });
});
