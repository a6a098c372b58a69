import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestGateway } from './support/test-gateway';

// Characters that base64, hex and percent-encoding each write differently.
const TOKEN = 'ghp_Tok/en+Value=0123:4567~89ab';

/** Ways an upstream may hand back the Authorization header it received (`Bearer <token>`). */
const REFLECTIONS: Record<string, (header: string) => string> = {
  base64: (h) => Buffer.from(h).toString('base64'),
  base64url: (h) => Buffer.from(h).toString('base64url'),
  token_base64: (h) => Buffer.from(h.slice('Bearer '.length)).toString('base64'),
  basic_auth_style: (h) => Buffer.from(`x-access:${h.slice('Bearer '.length)}`).toString('base64'),
  hex: (h) => Buffer.from(h).toString('hex'),
  hex_upper: (h) => Buffer.from(h).toString('hex').toUpperCase(),
  upper: (h) => h.toUpperCase(),
  lower: (h) => h.toLowerCase(),
  percent: (h) => encodeURIComponent(h),
  percent_lower_hex: (h) => encodeURIComponent(h).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()),
  form: (h) => new URLSearchParams({ auth: h }).toString(),
};

/** How the agent would try to get the token back out of each reflection. */
function decodedForms(text: string): string[] {
  const attempts = [text, text.toLowerCase(), Buffer.from(text, 'base64').toString('latin1'), Buffer.from(text, 'base64url').toString('latin1')];
  for (const hex of text.match(/[0-9a-fA-F]{2,}/g) ?? []) attempts.push(Buffer.from(hex, 'hex').toString('latin1'));
  try {
    attempts.push(decodeURIComponent(text.replace(/\+/g, ' ')));
  } catch {
    // not percent-encoded
  }
  return attempts;
}

describe('secret scrubbing: encodings of a secret an upstream reflects', () => {
  let gw: TestGateway;
  let upstream: Server;
  const secretsDir = mkdtempSync(join(tmpdir(), 'agw-secret-enc-'));

  beforeAll(async () => {
    writeFileSync(join(secretsDir, 'token'), `${TOKEN}\n`);
    upstream = createServer((req, res) => {
      const header = req.headers.authorization ?? '';
      const reflected = Object.fromEntries(Object.entries(REFLECTIONS).map(([name, encode]) => [name, encode(header)]));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reflected));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    gw = await new TestGateway({
      secrets: `  UPSTREAM_TOKEN: { from: file, path: "${join(secretsDir, 'token')}" }`,
      extraTools: `  reflect: { kind: http, roles: [deployer], request: { method: GET, url: "http://127.0.0.1:${port}/reflect", headers: { Authorization: "Bearer \${secret:UPSTREAM_TOKEN}" } }, allowed_hosts: [127.0.0.1], input_schema: { type: object } }`,
    }).start();
  });
  afterAll(async () => {
    await gw.stop();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
    rmSync(secretsDir, { recursive: true, force: true });
  });

  it.each(Object.keys(REFLECTIONS))('scrubs the %s form from the result', async (name) => {
    const res = await gw.call('reflect', {});
    expect(res.status).toBe(200);
    const reflected: string = res.body.result.body[name];
    expect(reflected).toMatch(/\[REDACTED:secret:[0-9a-f]{8}\]/);
    for (const decoded of decodedForms(reflected)) expect(decoded.toLowerCase()).not.toContain(TOKEN.toLowerCase().slice(4, -4));
  });
});
