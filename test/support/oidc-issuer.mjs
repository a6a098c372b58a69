// A real OpenID provider (panva's oidc-provider, certified) for the OAuth e2e tests, in its own
// process (it is an ES module; Jest's CommonJS runtime on Node 20 cannot load it). Reads its
// settings as JSON from OIDC_ISSUER_OPTIONS, listens on 127.0.0.1 (port 0: any), and prints one line:
// {"issuer":"http://127.0.0.1:PORT"}. Client credentials with resource indicators: every access
// token is a JWT for the resource asked for, signed with the given private key (ES256).
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const options = JSON.parse(process.env.OIDC_ISSUER_OPTIONS);
// { jwk, clients: [{ client_id, client_secret, scope, claims? }], scopes, ttlS? }

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const claimsOf = new Map(options.clients.map((c) => [c.client_id, c.claims ?? {}]));

const provider = new Provider(issuer, {
  clients: options.clients.map(({ client_id, client_secret, scope }) => ({
    client_id,
    client_secret,
    scope,
    grant_types: ['client_credentials'],
    id_token_signed_response_alg: 'ES256',
    redirect_uris: [],
    response_types: [],
  })),
  jwks: { keys: [options.jwk] },
  scopes: options.scopes,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Any absolute URL is a resource here: the test asks for the gateway's and for another one.
      getResourceServerInfo: (_ctx, resource) => ({
        scope: options.scopes.join(' '),
        audience: resource,
        accessTokenTTL: options.ttlS ?? 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  extraTokenClaims: (_ctx, token) => claimsOf.get(token.clientId),
});
server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
