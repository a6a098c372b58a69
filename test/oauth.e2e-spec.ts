import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  Client,
  ClientCredentialsProvider,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  type OAuthClientMetadata,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
  type StoredOAuthTokens,
} from '@modelcontextprotocol/client';
import { decodeJwt, SignJWT } from 'jose';
import { type Browser } from 'playwright-core';
import { browserAvailable, launchChromium } from './support/chromium';
import { freePort } from './support/free-port';
import { HMAC_AGENT, MCP_DEPLOY_TOKEN, TestGateway } from './support/test-gateway';

// The MCP door as an OAuth 2.1 resource server, against a real OpenID provider (oidc-provider, in
// its own process on 127.0.0.1: client credentials with resource indicators, JWT access tokens)
// and the official SDK client, through the real door.

const SECRET = 'client-secret-0123456789abcdef';
type CallResult = { isError?: boolean; structuredContent?: Record<string, unknown>; content?: Array<{ type: string; text?: string }> };

/** The provider's clients: who each acts as in the gateway config below. */
const CLIENTS = [
  // Listed under the deploy agent's oauth_clients.
  { client_id: 'deploy-bot', client_secret: SECRET, scope: 'tools:call' },
  // Undeclared: its `roles` claim names the reader role.
  { client_id: 'person-reader', client_secret: SECRET, scope: 'tools:call', claims: { roles: ['offline_access', 'reader'] } },
  // Undeclared deployer (its calls that need approval run once approved).
  { client_id: 'person-deployer', client_secret: SECRET, scope: 'tools:call', claims: { roles: ['deployer'] } },
  // Undeclared deployer whose token covers read_file only; and one on whose behalf another acts.
  { client_id: 'narrow-bot', client_secret: SECRET, scope: 'tool:read_file', claims: { roles: ['deployer'], act: { sub: 'alice@example.com' } } },
  // No listed client, no role: acts as nobody.
  { client_id: 'stranger', client_secret: SECRET, scope: 'tools:call' },
  // Undeclared reader whose tokens are opaque: the gateway asks the provider about them.
  { client_id: 'opaque-reader', client_secret: SECRET, scope: 'tools:call', claims: { roles: ['reader'] }, opaque: true },
  // The gateway, when it introspects opaque tokens.
  { client_id: 'agent-gateway', client_secret: SECRET, introspect: true },
  // A desktop MCP client a person signs in with (authorization code + PKCE; any loopback port).
  { client_id: 'desktop-app', redirect_uris: ['http://127.0.0.1/callback'], scope: 'tools:call' },
];
/** The people who may sign in on the provider's login page, and the claims their tokens carry. */
const ACCOUNTS = { alice: { roles: ['reader'] } };

const clientAuth = (clientId: string) => ({
  'content-type': 'application/x-www-form-urlencoded',
  authorization: `Basic ${Buffer.from(`${clientId}:${SECRET}`).toString('base64')}`,
});

class OidcIssuer {
  readonly key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  issuer!: string;
  private child!: ChildProcess;

  async start(): Promise<this> {
    const jwk = { ...this.key.privateKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' };
    const options = { jwk, clients: CLIENTS, accounts: ACCOUNTS, scopes: ['tools:call', 'tool:read_file', 'tool:list_dir'] };
    this.child = spawn(process.execPath, [join(__dirname, 'support', 'oidc-issuer.mjs')], {
      env: { ...process.env, OIDC_ISSUER_OPTIONS: JSON.stringify(options) },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: this.child.stdout! }).once('line', resolve);
      this.child.once('exit', (code) => reject(new Error(`the OpenID provider exited (${code})`)));
    });
    this.issuer = (JSON.parse(line) as { issuer: string }).issuer;
    return this;
  }

  stop(): void {
    this.child?.kill();
  }

  /** An access token from the provider's token endpoint (client credentials, RFC 8707 resource). */
  async token(clientId: string, resource: string, scope?: string): Promise<string> {
    const body = new URLSearchParams({ grant_type: 'client_credentials', resource, ...(scope && { scope }) });
    const res = await fetch(`${this.issuer}/token`, { method: 'POST', headers: clientAuth(clientId), body });
    const json = (await res.json()) as { access_token?: string };
    if (!json.access_token) throw new Error(`no token: ${JSON.stringify(json)}`);
    return json.access_token;
  }

  /** Revokes a token at the provider (RFC 7009), as the client it was issued to. */
  async revoke(clientId: string, token: string): Promise<void> {
    const res = await fetch(`${this.issuer}/token/revocation`, { method: 'POST', headers: clientAuth(clientId), body: new URLSearchParams({ token }) });
    if (res.status !== 200) throw new Error(`revocation answered ${res.status}`);
  }

  /** A token signed by the test itself (with the provider's key unless another is given). */
  sign(claims: Record<string, unknown>, opts: { key?: KeyObject | Uint8Array; alg?: string; kid?: string; exp?: number; iss?: string } = {}): Promise<string> {
    return new SignJWT({ client_id: 'deploy-bot', scope: 'tools:call', ...claims })
      .setProtectedHeader({ alg: opts.alg ?? 'ES256', kid: opts.kid ?? 'k1', typ: 'at+jwt' })
      .setIssuer(opts.iss ?? this.issuer)
      .setSubject('deploy-bot')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? Math.floor(Date.now() / 1000) + 300)
      .sign(opts.key ?? this.key.privateKey);
  }
}

/**
 * What a desktop MCP client keeps for a person (the SDK's OAuthClientProvider): a public client
 * registered at the provider, its PKCE verifier and state, the tokens it got; it "opens" the
 * authorization URL by remembering it for the browser.
 */
class PersonClient implements OAuthClientProvider {
  authorizationUrl?: URL;
  readonly expectedState = randomUUID();
  private verifier = '';
  private saved?: StoredOAuthTokens;
  private discovery?: OAuthDiscoveryState;

  constructor(readonly redirectUrl: string) {}

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'desktop-app',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return { client_id: 'desktop-app' };
  }
  state() {
    return this.expectedState;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: StoredOAuthTokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  saveDiscoveryState(state: OAuthDiscoveryState) {
    this.discovery = state;
  }
  discoveryState() {
    return this.discovery;
  }
}

/** The desktop client's loopback redirect target (RFC 8252): resolves with the query of the first callback. */
async function callbackListener(): Promise<{ url: string; params: Promise<URLSearchParams>; server: Server }> {
  let resolve!: (params: URLSearchParams) => void;
  const params = new Promise<URLSearchParams>((r) => (resolve = r));
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    res.writeHead(url.pathname === '/callback' ? 200 : 404, { 'content-type': 'text/plain' }).end('You may close this window.');
    if (url.pathname === '/callback') resolve(url.searchParams);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`, params, server };
}

describe('POST /mcp with OAuth access tokens (the gateway as a resource server)', () => {
  let idp: OidcIssuer;
  let gw: TestGateway;
  let base: string;
  let resource: string;
  let metadataUrl: string;
  /** A configured issuer nobody answers for (its metadata and keys cannot be fetched). */
  let deadIssuer: string;
  /** The file the gateway reads its introspection client secret from (at each use). */
  let introspectionSecretFile: string;

  beforeAll(async () => {
    idp = await new OidcIssuer().start();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    resource = `${base}/mcp`;
    metadataUrl = `${base}/.well-known/oauth-protected-resource/mcp`;
    deadIssuer = `http://127.0.0.1:${await freePort()}`;
    introspectionSecretFile = join(mkdtempSync(join(tmpdir(), 'oauth-secret-')), 'introspection-secret');
    writeFileSync(introspectionSecretFile, `${SECRET}\n`);
    gw = await new TestGateway({
      agentLimit: { limit: 1000, ttl_s: 60 },
      secrets: `  IDP_INTROSPECTION: { from: file, path: "${introspectionSecretFile}" }`,
      beforeBoot: (g) => {
        const yaml = readFileSync(g.configFile, 'utf8').replace(
          `  - id: ${HMAC_AGENT}\n`,
          `  - id: ${HMAC_AGENT}\n    oauth_clients: ["${idp.issuer}#deploy-bot"]\n`,
        );
        const oauth = `oauth:\n  resource: "${resource}"\n  issuers:\n    - issuer: "${idp.issuer}"\n      allowed_hosts: ["127.0.0.1"]\n      role_claim: roles\n      introspection: { client_id: agent-gateway, client_secret: "\${secret:IDP_INTROSPECTION}" }\n    - { issuer: "${deadIssuer}", allowed_hosts: ["127.0.0.1"] }\n`;
        writeFileSync(g.configFile, `${yaml}\n${oauth}`);
      },
    }).start();
    await gw.app.listen(port, '127.0.0.1');
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hello, agent\n');
  });
  afterAll(async () => {
    await gw?.stop();
    idp?.stop();
  });

  const post = (token: string | undefined, body: unknown = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }) =>
    fetch(resource, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(token && { authorization: `Bearer ${token}` }) },
      body: JSON.stringify(body),
    });

  async function connect(auth: { token: string } | { provider: OAuthClientProvider }) {
    const client = new Client({ name: 'oauth-test', version: '2.4.0' }, { versionNegotiation: { mode: 'auto' } });
    const options = 'token' in auth ? { requestInit: { headers: { Authorization: `Bearer ${auth.token}` } } } : { authProvider: auth.provider };
    await client.connect(new StreamableHTTPClientTransport(new URL(resource), options));
    return {
      tools: async () => (await client.listTools()).tools.map((t) => t.name),
      call: async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallResult,
      close: () => client.close(),
    };
  }

  const lastOutcome = (tool: string) =>
    gw
      .auditRecords()
      .filter((r) => r.event === 'outcome' && r.tool === tool)
      .pop();

  it('serves RFC 9728 metadata at both well-known addresses', async () => {
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ resource, authorization_servers: [idp.issuer, deadIssuer], bearer_methods_supported: ['header'] });
      // tools:call only: the public document names no tool (per-tool scopes are named in a 403's challenge).
      expect(body.scopes_supported).toEqual(['tools:call']);
    }
  });

  it('answers a request without a token with 401 pointing at the metadata, and a bad token with invalid_token too', async () => {
    const none = await post(undefined);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${metadataUrl}", scope="tools:call"`);
    const bad = await post('not-a-token');
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toBe(`Bearer error="invalid_token", resource_metadata="${metadataUrl}", scope="tools:call"`);
  });

  it('lets the SDK client find the provider from the 401, get a token on its own, list its tools and call one as the mapped agent', async () => {
    const provider = new ClientCredentialsProvider({ clientId: 'deploy-bot', clientSecret: SECRET, scope: 'tools:call', expectedIssuer: idp.issuer });
    const agent = await connect({ provider });
    try {
      expect(await agent.tools()).toEqual([
        'approval_status',
        'configure',
        'delete_file',
        'delete_now',
        'limited_read',
        'list_dir',
        'read_file',
        'write_file',
        'write_now',
      ]);
      const result = await agent.call('read_file', { path: 'hello.txt' });
      expect(result.isError).toBeFalsy();
      expect(JSON.stringify(result.content)).toContain('hello, agent');
      expect(lastOutcome('read_file')).toMatchObject({
        agent_id: HMAC_AGENT,
        role: 'deployer',
        channel: 'mcp',
        auth: 'oauth',
        issuer: idp.issuer,
        subject: 'deploy-bot',
        client_id: 'deploy-bot',
      });
    } finally {
      await agent.close();
    }
  });

  (browserAvailable('the OAuth sign-in in a browser') ? describe : describe.skip)('a person signing in with the browser (authorization code + PKCE)', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchChromium();
    }, 30_000);
    afterAll(() => browser?.close());

    it('finds the provider from the 401, signs in on its login page, gets a token for this resource, and acts in the role its claim names', async () => {
      const callback = await callbackListener();
      const person = new PersonClient(callback.url);
      try {
        // First contact: the gateway's 401 and metadata lead the SDK to the provider; it asks to open the login page.
        const first = new StreamableHTTPClientTransport(new URL(resource), { authProvider: person });
        await expect(new Client({ name: 'desktop-app', version: '1.0.0' }).connect(first)).rejects.toThrow(UnauthorizedError);
        const asked = person.authorizationUrl!;
        expect(asked.origin).toBe(idp.issuer);
        expect(asked.searchParams.get('resource')).toBe(resource);
        expect(asked.searchParams.get('code_challenge_method')).toBe('S256');

        const page = await browser.newPage();
        page.setDefaultTimeout(10_000);
        try {
          await page.route(/^https:/, (route) => route.abort()); // the login page's web fonts: nothing leaves this machine
          await page.goto(asked.href);
          await page.fill('input[name=login]', 'alice');
          await page.fill('input[name=password]', 'any password');
          await page.click('button[type=submit]');
          await page.click('button:has-text("Continue")');
          const params = await callback.params;
          expect(params.get('state')).toBe(person.expectedState);
          // The SDK redeems the code with its PKCE verifier (and checks the iss the provider sent).
          await first.finishAuth(params);
        } finally {
          await page.close();
        }

        const token = person.tokens()!.access_token;
        expect(decodeJwt(token)).toMatchObject({ iss: idp.issuer, sub: 'alice', aud: resource, client_id: 'desktop-app' });
        const agent = await connect({ provider: person });
        try {
          expect(await agent.tools()).toEqual(['approval_status', 'list_dir', 'read_file']);
          const result = await agent.call('read_file', { path: 'hello.txt' });
          expect(JSON.stringify(result.content)).toContain('hello, agent');
        } finally {
          await agent.close();
        }
        expect(lastOutcome('read_file')).toMatchObject({
          agent_id: `${idp.issuer}#alice`,
          role: 'reader',
          auth: 'oauth',
          issuer: idp.issuer,
          subject: 'alice',
          client_id: 'desktop-app',
          status: 'executed',
        });
      } finally {
        callback.server.close();
      }
    }, 30_000);
  });

  it('refuses a token minted for another resource (401), never passing it on', async () => {
    const token = await idp.token('deploy-bot', 'https://other.example/mcp', 'tools:call');
    const res = await post(token);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer error="invalid_token", resource_metadata="${metadataUrl}", scope="tools:call"`);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'unauthenticated', reason_code: 'invalid_token' });
    expect(gw.auditRecords().find((r) => r.audit_id === body.audit_id)).toMatchObject({ http_status: 401, channel: 'mcp' });
  });

  it.each([
    ['an expired token', () => idp.sign({ aud: resource }, { exp: Math.floor(Date.now() / 1000) - 120 }), 'token_expired'],
    [
      'an HS256 token signed with a secret',
      () => idp.sign({ aud: resource }, { alg: 'HS256', key: new TextEncoder().encode('some-shared-secret-0123456789abcdef') }),
      'invalid_token',
    ],
    [
      'a token signed by a key the issuer does not publish',
      () => idp.sign({ aud: resource }, { kid: 'k2', key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }),
      'invalid_token',
    ],
    ['a token of another issuer', () => idp.sign({ aud: resource }, { iss: 'https://idp.invalid' }), 'invalid_token'],
    [
      'an unsigned token (alg none)',
      async () =>
        `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: idp.issuer, aud: resource, sub: 'x', exp: 9e9 })).toString('base64url')}.`,
      'invalid_token',
    ],
  ])('refuses %s with 401', async (_what, mint, reason) => {
    const res = await post(await mint());
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(await res.json()).toMatchObject({ status: 'unauthenticated', reason_code: reason });
  });

  it('answers 503 for a token of an issuer whose keys cannot be fetched: never an open door', async () => {
    const res = await post(await idp.sign({ aud: resource }, { iss: deadIssuer }));
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ reason_code: 'issuer_unavailable' });
  });

  it('lets an undeclared caller act in the role its claim names, as <issuer>#<subject>', async () => {
    const agent = await connect({ token: await idp.token('person-reader', resource, 'tools:call') });
    try {
      expect(await agent.tools()).toEqual(['approval_status', 'list_dir', 'read_file']);
      const result = await agent.call('read_file', { path: 'hello.txt' });
      expect(result.isError).toBeFalsy();
      const denied = await agent.call('write_now', { path: 'x.txt', content: 'x' });
      expect(denied.structuredContent).toMatchObject({ status: 'denied' });
    } finally {
      await agent.close();
    }
    expect(lastOutcome('read_file')).toMatchObject({
      agent_id: `${idp.issuer}#person-reader`,
      role: 'reader',
      auth: 'oauth',
      issuer: idp.issuer,
      subject: 'person-reader',
    });
  });

  it("files an undeclared caller's call for approval, and runs it as that caller once approved", async () => {
    const agent = await connect({ token: await idp.token('person-deployer', resource, 'tools:call') });
    try {
      const asked = await agent.call('write_file', { path: 'approved-by-oauth.txt', content: 'ok' });
      expect(asked.structuredContent).toMatchObject({ status: 'pending_approval' });
      expect((await gw.asApprover().decide(asked.structuredContent!.approval_id as string, true)).status).toBe(200);
    } finally {
      await agent.close();
    }
    expect(readFileSync(join(gw.workspace, 'approved-by-oauth.txt'), 'utf8')).toBe('ok');
    expect(lastOutcome('write_file')).toMatchObject({ agent_id: `${idp.issuer}#person-deployer`, role: 'deployer', status: 'executed' });
  });

  it("refuses a tool call outside the token's scope with 403 insufficient_scope naming the scope; calls inside it run", async () => {
    const token = await idp.token('narrow-bot', resource, 'tool:read_file');
    const res = await post(token, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'list_dir', arguments: { path: '.' } } });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer error="insufficient_scope", scope="tool:list_dir", resource_metadata="${metadataUrl}"`);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'denied', reason_code: 'insufficient_scope' });
    expect(gw.auditRecords().find((r) => r.audit_id === body.audit_id)).toMatchObject({
      http_status: 403,
      auth: 'oauth',
      subject: 'narrow-bot',
      act: { sub: 'alice@example.com' },
    });

    const agent = await connect({ token });
    try {
      expect((await agent.call('read_file', { path: 'hello.txt' })).isError).toBeFalsy();
    } finally {
      await agent.close();
    }
    expect(lastOutcome('read_file')).toMatchObject({
      agent_id: `${idp.issuer}#narrow-bot`,
      act: { sub: 'alice@example.com' },
    });
  });

  it('answers a call of an unknown tool with a name no header can carry, and stays up', async () => {
    const token = await idp.token('narrow-bot', resource, 'tool:read_file');
    for (const name of ['x\u20ac', 'a\r\nX-Injected: 1', 'a" realm="evil']) {
      const res = await post(token, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name, arguments: {} } });
      expect(res.status).toBe(200);
      expect(res.headers.get('www-authenticate')).toBeNull();
      // Refused by the pipeline as an unknown tool (an MCP result, sent as an event stream to this old-era request).
      expect(await res.text()).toContain('"isError":true');
    }
    expect((await post(token, { jsonrpc: '2.0', id: 4, method: 'tools/list', params: {} })).status).toBe(200);
  });

  it('refuses a valid token that acts as no agent with 403, on the record with its issuer and subject', async () => {
    const res = await post(await idp.token('stranger', resource, 'tools:call'));
    expect(res.status).toBe(403);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'denied', reason_code: 'no_agent_for_token' });
    expect(gw.auditRecords().find((r) => r.audit_id === body.audit_id)).toMatchObject({ auth: 'oauth', issuer: idp.issuer, subject: 'stranger' });
  });

  describe('opaque tokens, asked about at the provider (RFC 7662 introspection)', () => {
    it('lets the SDK client get an opaque token on its own and act in the role the introspection answer names', async () => {
      const provider = new ClientCredentialsProvider({ clientId: 'opaque-reader', clientSecret: SECRET, scope: 'tools:call', expectedIssuer: idp.issuer });
      const agent = await connect({ provider });
      try {
        expect(provider.tokens()?.access_token.split('.')).toHaveLength(1);
        expect(await agent.tools()).toEqual(['approval_status', 'list_dir', 'read_file']);
        const result = await agent.call('read_file', { path: 'hello.txt' });
        expect(JSON.stringify(result.content)).toContain('hello, agent');
      } finally {
        await agent.close();
      }
      expect(lastOutcome('read_file')).toMatchObject({
        agent_id: `${idp.issuer}#opaque-reader`,
        role: 'reader',
        auth: 'oauth',
        issuer: idp.issuer,
        subject: 'opaque-reader',
        client_id: 'opaque-reader',
      });
    });

    it('refuses an opaque token for another resource, a revoked one and a made-up one with 401, on the record', async () => {
      const revoked = await idp.token('opaque-reader', resource, 'tools:call');
      await idp.revoke('opaque-reader', revoked);
      for (const token of [await idp.token('opaque-reader', 'https://other.example/mcp', 'tools:call'), revoked, 'made-up-opaque-token-0123456789']) {
        const res = await post(token);
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe(`Bearer error="invalid_token", resource_metadata="${metadataUrl}", scope="tools:call"`);
        const body = (await res.json()) as Record<string, unknown>;
        expect(body).toMatchObject({ status: 'unauthenticated', reason_code: 'invalid_token' });
        expect(gw.auditRecords().find((r) => r.audit_id === body.audit_id)).toMatchObject({ http_status: 401, channel: 'mcp' });
      }
    });

    it("answers 503 while the provider refuses the gateway's own credentials, and reads a rotated secret without a restart", async () => {
      writeFileSync(introspectionSecretFile, 'a-wrong-secret-0123456789\n');
      try {
        const res = await post(await idp.token('opaque-reader', resource, 'tools:call'));
        expect(res.status).toBe(503);
        expect(await res.json()).toMatchObject({ reason_code: 'issuer_unavailable' });
      } finally {
        writeFileSync(introspectionSecretFile, `${SECRET}\n`);
      }
      expect((await post(await idp.token('opaque-reader', resource, 'tools:call'))).status).toBe(200);
    });
  });

  it('still takes static MCP tokens beside OAuth', async () => {
    const agent = await connect({ token: MCP_DEPLOY_TOKEN });
    try {
      expect(await agent.tools()).toContain('write_now');
      expect((await agent.call('read_file', { path: 'hello.txt' })).isError).toBeFalsy();
    } finally {
      await agent.close();
    }
    const record = lastOutcome('read_file');
    expect(record).toMatchObject({ agent_id: HMAC_AGENT });
    expect(record?.auth).toBeUndefined();
  });
});

describe('without an oauth: section', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await new TestGateway().start();
  });
  afterAll(() => gw.stop());

  it('serves no OAuth metadata (404)', async () => {
    await gw.http().get('/.well-known/oauth-protected-resource').expect(404);
    await gw.http().get('/.well-known/oauth-protected-resource/mcp').expect(404);
  });
});

describe('an issuer that introspects opaque tokens, down', () => {
  let gw: TestGateway;
  let resource: string;
  beforeAll(async () => {
    const port = await freePort();
    resource = `http://127.0.0.1:${port}/mcp`;
    const issuer = `http://127.0.0.1:${await freePort()}`;
    const secretFile = join(mkdtempSync(join(tmpdir(), 'oauth-secret-')), 'introspection-secret');
    writeFileSync(secretFile, SECRET);
    gw = await new TestGateway({
      secrets: `  IDP_INTROSPECTION: { from: file, path: "${secretFile}" }`,
      beforeBoot: (g) => {
        const oauth = `oauth:\n  resource: "${resource}"\n  issuers:\n    - issuer: "${issuer}"\n      allowed_hosts: ["127.0.0.1"]\n      role_claim: roles\n      introspection: { client_id: agent-gateway, client_secret: "\${secret:IDP_INTROSPECTION}" }\n`;
        writeFileSync(g.configFile, `${readFileSync(g.configFile, 'utf8')}\n${oauth}`);
      },
    }).start();
    await gw.app.listen(port, '127.0.0.1');
  });
  afterAll(() => gw?.stop());

  it('answers 503 issuer_unavailable for an opaque token: never an open door', async () => {
    const res = await fetch(resource, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: 'Bearer some-opaque-token-0123456789' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ reason_code: 'issuer_unavailable' });
  });
});
