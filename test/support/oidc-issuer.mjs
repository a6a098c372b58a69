// A real OpenID provider (panva's oidc-provider, certified) for the OAuth e2e tests and for
// `npm run oauth:dev`, in its own process (it is an ES module; Jest's CommonJS runtime on Node 20
// cannot load it). Reads its settings as JSON from OIDC_ISSUER_OPTIONS, listens on 127.0.0.1
// (OIDC_ISSUER_PORT, or any free port), prints one line: {"issuer":"http://127.0.0.1:PORT"}, and
// stops when its stdin closes (spawn it with a piped stdin).
//
// Settings: { jwk, scopes, ttlS?, accounts?, clients: [...] }
// - jwk: the private signing key (ES256).
// - clients[]: { client_id, client_secret, scope, claims?, opaque? } for client credentials; or
//   { client_id, redirect_uris, scope } for a public client of a person (authorization code with
//   PKCE, signed in on the provider's own login page); or { client_id, client_secret, introspect: true }
//   for a resource server that may ask the introspection endpoint about any token.
// - accounts: { <login>: { <claim>: value } }: the claims a person's tokens carry (any login signs in,
//   with any password, on the provider's development login page; unlisted logins carry none).
// Resource indicators: every access token is for the resource asked for; a JWT signed with `jwk`,
// or, for a client marked `opaque`, an opaque token that only introspection can tell about.
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const options = JSON.parse(process.env.OIDC_ISSUER_OPTIONS);

const server = createServer();
await new Promise((resolve) => server.listen(Number(process.env.OIDC_ISSUER_PORT ?? 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const byId = new Map(options.clients.map((c) => [c.client_id, c]));
const accounts = options.accounts ?? {};

function clientMetadata(c) {
  if (c.redirect_uris)
    return {
      client_id: c.client_id,
      scope: c.scope,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: c.redirect_uris,
      id_token_signed_response_alg: 'ES256',
    };
  return {
    client_id: c.client_id,
    client_secret: c.client_secret,
    ...(c.scope && { scope: c.scope }),
    grant_types: c.introspect ? [] : ['client_credentials'],
    id_token_signed_response_alg: 'ES256',
    redirect_uris: [],
    response_types: [],
  };
}

const provider = new Provider(issuer, {
  clients: options.clients.map(clientMetadata),
  jwks: { keys: [options.jwk] },
  scopes: options.scopes,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: Object.keys(accounts).length > 0 },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    introspection: {
      enabled: true,
      // Only a resource server's client may ask about tokens (and learn what they carry).
      allowedPolicy: (_ctx, client) => byId.get(client.clientId)?.introspect === true,
    },
    resourceIndicators: {
      enabled: true,
      // Any absolute URL is a resource here: the tests ask for the gateway's and for another one.
      getResourceServerInfo: (_ctx, resource, client) => ({
        scope: options.scopes.join(' '),
        audience: resource,
        accessTokenTTL: options.ttlS ?? 300,
        ...(byId.get(client.clientId)?.opaque ? { accessTokenFormat: 'opaque' } : { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
      }),
      // A person's code is redeemed for the resource the authorization request named.
      useGrantedResource: () => true,
    },
  },
  // The claims configured for the person (signed in) or the client (client credentials).
  extraTokenClaims: (_ctx, token) => (token.accountId ? accounts[token.accountId] : byId.get(token.clientId)?.claims),
});
server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
// Its parent holds stdin open: when the parent is gone (even killed), so is this provider.
process.stdin.on('end', () => process.exit(0)).resume();
