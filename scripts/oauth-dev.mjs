// `npm run oauth:dev`: a local OpenID provider (oidc-provider, development mode) to try the
// gateway's OAuth door on one machine (README, "Sign in with your identity provider"). It issues
// access tokens for the gateway's /mcp to two clients (client credentials), and prints the
// `oauth:` section to paste into policies/gateway.yaml and the commands to get and use a token.
// Never for production: fixed client secrets, keys that live only as long as the process.
//
//   OIDC_PORT    where the provider listens on 127.0.0.1 (9400)
//   PORT         the gateway's port, for the resource URL http://localhost:$PORT/mcp (8000)
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { calculateJwkThumbprint } from 'jose';

const oidcPort = Number(process.env.OIDC_PORT ?? 9400);
const resource = `http://localhost:${process.env.PORT ?? 8000}/mcp`;
const DEV_CLIENTS = [
  // Acts as the demo's deployer role through its `roles` claim (role_claim: roles).
  { client_id: 'deploy-bot', client_secret: 'dev-only-oauth-secret-deploy-bot', scope: 'tools:call', claims: { roles: ['deployer'] } },
  // A reader, whose tokens are opaque: the gateway asks the provider about them (introspection).
  { client_id: 'reader-bot', client_secret: 'dev-only-oauth-secret-reader-bot', scope: 'tools:call', claims: { roles: ['reader'] }, opaque: true },
  // The gateway itself, when it introspects opaque tokens.
  { client_id: 'agent-gateway', client_secret: 'dev-only-oauth-secret-gateway', introspect: true },
];

// A fresh signing key per run, named by its thumbprint: a gateway still running from before sees
// an unknown kid and fetches the new key set.
const jwk = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig' };
jwk.kid = await calculateJwkThumbprint(jwk);

const child = spawn(process.execPath, [fileURLToPath(new URL('../test/support/oidc-issuer.mjs', import.meta.url))], {
  env: {
    ...process.env,
    OIDC_ISSUER_PORT: String(oidcPort),
    OIDC_ISSUER_OPTIONS: JSON.stringify({ jwk, clients: DEV_CLIENTS, scopes: ['tools:call', 'tool:read_file', 'tool:list_dir'], ttlS: 3600 }),
  },
  stdio: ['pipe', 'pipe', 'pipe'],
});
// oidc-provider's reminders about development defaults (findAccount, policies) are left out; its errors are not.
createInterface({ input: child.stderr }).on('line', (line) => {
  if (!/oidc-provider WARNING|should be|must be changed|configuration/i.test(line)) process.stderr.write(`${line}\n`);
});
child.on('exit', (code) => {
  if (code) process.stderr.write(`The OpenID provider stopped (exit ${code}); is port ${oidcPort} free? (OIDC_PORT)\n`);
  process.exit(code ?? 0);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill('SIGTERM'));

const { issuer } = JSON.parse(await new Promise((resolve) => createInterface({ input: child.stdout }).once('line', resolve)));
const [deploy, reader, gateway] = DEV_CLIENTS;
process.stdout.write(`
A development OpenID provider is listening at ${issuer} (Ctrl-C stops it).

1. Paste this at the top level of policies/gateway.yaml, then start the gateway (npm start):

oauth:
  resource: "${resource}"
  issuers:
    - issuer: "${issuer}"
      allowed_hosts: ["127.0.0.1"]
      role_claim: roles

2. An agent gets a token on its own and calls a tool (the official MCP SDK client finds this
   provider from the gateway's 401, asks it for a token for ${resource}, lists its tools, calls one):

   node scripts/oauth-dev-agent.mjs ${deploy.client_id} ${deploy.client_secret} ${issuer}

   Or by hand, with curl:

   TOKEN=$(curl -s -u ${deploy.client_id}:${deploy.client_secret} -d grant_type=client_credentials -d scope=tools:call \\
     --data-urlencode resource=${resource} ${issuer}/token | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
   curl -s ${resource} -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
     -H 'accept: application/json, text/event-stream' -d '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'

3. Opaque tokens, checked by asking the provider (introspection): add to the issuer above

      introspection: { client_id: ${gateway.client_id}, client_secret: "\${secret:OAUTH_INTROSPECTION_SECRET}" }

   and under secrets:

  OAUTH_INTROSPECTION_SECRET: { from: env, name: OAUTH_INTROSPECTION_SECRET }

   start the gateway with OAUTH_INTROSPECTION_SECRET=${gateway.client_secret} npm start, then:

   node scripts/oauth-dev-agent.mjs ${reader.client_id} ${reader.client_secret} ${issuer}

`);
