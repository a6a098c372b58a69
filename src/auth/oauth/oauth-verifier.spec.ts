import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import type { GatewayConfig } from '../../config/gateway-config';
import { SecretStore } from '../../secrets/secret-store';
import { OAuthTokenRefused } from './oauth-token';
import { OAuthVerifier } from './oauth-verifier';
import { TOKEN_CACHE_MS } from './token-cache';

// A JWT that checked out is kept (by its hash) so that an agent repeating its token does not pay
// for the signature check on every call; the keeping must never outlive the token. A real issuer
// (metadata and key set over HTTP on 127.0.0.1); only the clock is moved.

const RESOURCE = 'https://gw.example/mcp';
const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const made: OAuthVerifier[] = [];
let server: Server;
let issuer: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? { issuer, jwks_uri: `${issuer}/jwks` }
        : { keys: [{ ...key.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' }] };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await Promise.all(made.map((verifier) => verifier.onModuleDestroy()));
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

afterEach(() => jest.useRealTimers());

function verifier(): OAuthVerifier {
  const config = {
    agents: new Map(),
    secrets: {},
    oauth: { resource: RESOURCE, issuers: [{ issuer, allowed_hosts: ['127.0.0.1'], allow_private_networks: false }] },
  };
  const verifier = new OAuthVerifier(config as unknown as GatewayConfig, new SecretStore(config as unknown as GatewayConfig));
  made.push(verifier);
  return verifier;
}

function sign(expSeconds: number, subject = 'bot'): Promise<string> {
  return new SignJWT({ client_id: subject })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(issuer)
    .setSubject(subject)
    .setAudience(RESOURCE)
    .setExpirationTime(expSeconds)
    .sign(key.privateKey);
}

/** Moves Date (jose's clock and the cache's) only; sockets and timers run as usual. */
function clockAt(ms: number): void {
  jest.useFakeTimers({
    doNotFake: [
      'nextTick',
      'setImmediate',
      'clearImmediate',
      'setTimeout',
      'clearTimeout',
      'setInterval',
      'clearInterval',
      'queueMicrotask',
      'hrtime',
      'performance',
    ],
  });
  jest.setSystemTime(ms);
}

describe('OAuthVerifier', () => {
  it('answers a token again from what it kept (the same verified claims), and tells tokens apart', async () => {
    const oauth = verifier();
    const exp = Math.floor(Date.now() / 1000) + 300;
    const [a, b] = [await sign(exp, 'agent-a'), await sign(exp, 'agent-b')];
    const first = await oauth.verify(a);
    expect(first.claims.sub).toBe('agent-a');
    expect((await oauth.verify(b)).claims.sub).toBe('agent-b');
    expect(await oauth.verify(a)).toBe(first);
  });

  it('refuses a kept token once it has expired (within the clock skew when it was checked, past it now)', async () => {
    const oauth = verifier();
    const now = Date.now();
    const exp = Math.floor(now / 1000) - 20; // expired, but inside the 30 s skew: accepted
    const token = await sign(exp);
    clockAt(now);
    await expect(oauth.verify(token)).resolves.toMatchObject({ claims: { sub: 'bot' } });
    clockAt(now + 15_000); // 35 s past exp, still inside TOKEN_CACHE_MS of the check
    expect(15_000).toBeLessThan(TOKEN_CACHE_MS);
    await expect(oauth.verify(token)).rejects.toEqual(new OAuthTokenRefused('token_expired', 'This token has expired'));
  });
});
