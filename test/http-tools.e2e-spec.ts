import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestGateway } from './support/test-gateway';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A real HTTP upstream on 127.0.0.1, started by the test. */
class Upstream {
  readonly seen: Seen[] = [];
  closedHangs = 0;
  private server!: Server;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      this.seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const path = req.url!.split('?')[0];
      const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(value));
      };
      if (path.startsWith('/echo')) return json(200, { method: req.method, url: req.url, authorization: req.headers.authorization ?? null, body });
      if (path === '/redirect-out') return json(302, {}, { location: 'http://evil.example/steal' });
      if (path === '/redirect-in') return json(302, {}, { location: '/echo/after-redirect' });
      if (path === '/fail') return json(500, { error: 'boom' });
      if (path === '/big') return res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(2 * 1024 * 1024));
      if (path === '/hang') {
        res.on('close', () => (this.closedHangs += 1));
        return; // never answers
      }
      json(404, { error: 'no route' });
    });
  }
}

describe('http tools, secrets and egress', () => {
  const upstream = new Upstream();
  let gw: TestGateway;
  const TOKEN_1 = 'ghp_first-token-value-0123456789';
  const TOKEN_2 = 'ghp_rotated-token-value-9876543210';

  const secretsDir = mkdtempSync(join(tmpdir(), 'agw-secrets-'));
  const tokenFile = join(secretsDir, 'upstream_token');

  beforeAll(async () => {
    writeFileSync(tokenFile, `${TOKEN_1}\n`);
    await upstream.start();
    const base = `http://127.0.0.1:${upstream.port}`;
    const any = '{ type: object, additionalProperties: true }';
    gw = new TestGateway({
      secrets: [`  UPSTREAM_TOKEN: { from: file, path: "${tokenFile}" }`, `  NOT_SET: { from: env, name: AGW_TEST_SECRET_THAT_IS_NOT_SET }`].join('\n'),
      extraTools: [
        `  create_issue:`,
        `    kind: http`,
        `    roles: [deployer]`,
        `    request: { method: POST, url: "${base}/echo/repos/{owner}/{repo}/issues", headers: { Authorization: "Bearer \${secret:UPSTREAM_TOKEN}", X-Static: "yes" } }`,
        `    allowed_hosts: [127.0.0.1]`,
        `    input_schema: { type: object, required: [owner, repo, title], properties: { owner: { type: string }, repo: { type: string }, title: { type: string }, labels: { type: array } } }`,
        `  search: { kind: http, roles: [deployer], request: { method: GET, url: "${base}/echo/search" }, allowed_hosts: [127.0.0.1], input_schema: ${any} }`,
        `  redirect_out: { kind: http, roles: [deployer], request: { method: GET, url: "${base}/redirect-out", headers: { Authorization: "Bearer \${secret:UPSTREAM_TOKEN}" } }, allowed_hosts: [127.0.0.1], input_schema: ${any} }`,
        `  redirect_in: { kind: http, roles: [deployer], request: { method: GET, url: "${base}/redirect-in" }, allowed_hosts: [127.0.0.1], input_schema: ${any} }`,
        `  failing: { kind: http, roles: [deployer], request: { method: GET, url: "${base}/fail" }, allowed_hosts: [127.0.0.1], input_schema: ${any} }`,
        `  big: { kind: http, roles: [deployer], request: { method: GET, url: "${base}/big" }, allowed_hosts: [127.0.0.1], input_schema: ${any} }`,
        `  hang: { kind: http, roles: [deployer], timeout_ms: 300, request: { method: GET, url: "${base}/hang" }, allowed_hosts: [127.0.0.1], input_schema: ${any} }`,
        `  any_host: { kind: http, roles: [deployer], request: { method: GET, url: "http://{host}:${upstream.port}/echo" }, allowed_hosts: [api.example.com], input_schema: { type: object, required: [host], properties: { host: { type: string } } } }`,
        `  by_name: { kind: http, roles: [deployer], request: { method: GET, url: "http://localhost:${upstream.port}/echo" }, allowed_hosts: [localhost], input_schema: ${any} }`,
        `  by_name_private_ok: { kind: http, roles: [deployer], allow_private_networks: true, request: { method: GET, url: "http://localhost:${upstream.port}/echo" }, allowed_hosts: [localhost], input_schema: ${any} }`,
        `  needs_missing_secret: { kind: http, roles: [deployer], request: { method: GET, url: "${base}/echo", headers: { X-Key: "\${secret:NOT_SET}" } }, allowed_hosts: [127.0.0.1], input_schema: ${any} }`,
        `  unreachable: { kind: http, roles: [deployer], request: { method: GET, url: "http://127.0.0.1:1/" }, allowed_hosts: [127.0.0.1], input_schema: ${any} }`,
      ].join('\n'),
    });
    await gw.start();
  });
  afterAll(async () => {
    await gw.stop();
    await upstream.stop();
    rmSync(secretsDir, { recursive: true, force: true });
  });

  const lastSeen = () => upstream.seen[upstream.seen.length - 1];

  it('calls the upstream with the secret injected, and the agent and the audit never see it', async () => {
    const res = await gw.call('create_issue', { owner: 'acme', repo: 'site', title: 'Broken link', labels: ['bug'] });
    expect(res.status).toBe(200);
    const seen = lastSeen();
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/echo/repos/acme/site/issues');
    expect(seen.headers.authorization).toBe(`Bearer ${TOKEN_1}`);
    expect(seen.headers['x-static']).toBe('yes');
    expect(JSON.parse(seen.body)).toEqual({ title: 'Broken link', labels: ['bug'] });
    // The upstream echoed the credential back: it is scrubbed from the result.
    expect(res.body.result).toEqual({
      status: 200,
      headers: expect.objectContaining({ 'content-type': 'application/json' }),
      body: expect.objectContaining({ authorization: expect.stringMatching(/^Bearer \[REDACTED:secret:[0-9a-f]{8}\]$/) }),
    });
    expect(JSON.stringify(res.body)).not.toContain(TOKEN_1);
    expect(readFileSync(gw.auditFile, 'utf8')).not.toContain(TOKEN_1);
  });

  it('percent-encodes arguments in the URL, so they cannot change the path or the host', async () => {
    const res = await gw.call('create_issue', { owner: '../../admin?x=1#', repo: '@evil.example', title: 't' });
    expect(res.status).toBe(200);
    expect(lastSeen().url).toBe('/echo/repos/..%2F..%2Fadmin%3Fx%3D1%23/%40evil.example/issues');
  });

  it('sends the remaining arguments as the query string of a GET', async () => {
    const res = await gw.call('search', { q: 'a b&c', page: 2 });
    expect(res.status).toBe(200);
    expect(lastSeen().url).toBe('/echo/search?q=a+b%26c&page=2');
  });

  it('returns an upstream 500 as a result with that status', async () => {
    const res = await gw.call('failing', {});
    expect(res.status).toBe(200);
    expect(res.body.result).toEqual({ status: 500, headers: expect.objectContaining({ 'content-type': 'application/json' }), body: { error: 'boom' } });
  });

  it('follows a redirect within the allowed hosts', async () => {
    const res = await gw.call('redirect_in', {});
    expect(res.status).toBe(200);
    expect(res.body.result.body.url).toBe('/echo/after-redirect');
  });

  it('does not follow a redirect to a host off the list (403 host_not_allowed)', async () => {
    const res = await gw.call('redirect_out', {});
    expect([res.status, res.body.status, res.body.reason_code]).toEqual([403, 'denied', 'host_not_allowed']);
    expect(res.body.error).toContain('evil.example');
  });

  it('stops a hung upstream at timeout_ms: 504 tool_timeout, and the connection is closed', async () => {
    const before = upstream.closedHangs;
    const res = await gw.call('hang', {});
    expect([res.status, res.body.status, res.body.reason_code]).toEqual([504, 'tool_timeout', 'tool_timeout']);
    for (let i = 0; i < 50 && upstream.closedHangs === before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(upstream.closedHangs).toBe(before + 1);
  });

  it('refuses a response over 1 MiB (502 tool_error)', async () => {
    const res = await gw.call('big', {});
    expect([res.status, res.body.reason_code]).toEqual([502, 'tool_error']);
    expect(res.body.error).toContain('1 MiB');
  });

  it('reads the secret at execution time: a rotated value is used on the next call', async () => {
    writeFileSync(tokenFile, TOKEN_2);
    const res = await gw.call('create_issue', { owner: 'a', repo: 'b', title: 'c' });
    expect(res.status).toBe(200);
    expect(lastSeen().headers.authorization).toBe(`Bearer ${TOKEN_2}`);
    expect(JSON.stringify(res.body)).not.toContain(TOKEN_2);
    writeFileSync(tokenFile, TOKEN_1);
  });

  it('names a missing secret in a tool_error, and sends nothing', async () => {
    const count = upstream.seen.length;
    const res = await gw.call('needs_missing_secret', {});
    expect([res.status, res.body.reason_code, res.body.error]).toEqual([502, 'tool_error', 'Secret "NOT_SET" is not available']);
    expect(upstream.seen.length).toBe(count);
  });

  it('reports an unreachable upstream as tool_error', async () => {
    const res = await gw.call('unreachable', {});
    expect([res.status, res.body.reason_code]).toEqual([502, 'tool_error']);
    expect(res.body.error).toMatch(/^Could not reach 127\.0\.0\.1/);
  });

  describe('SSRF through arguments', () => {
    it.each([
      ['loopback', '127.0.0.1'],
      ['decimal IPv4', '2130706433'],
      ['hex IPv4', '0x7f000001'],
      ['short IPv4', '127.1'],
      ['IPv4-mapped IPv6', '[::ffff:127.0.0.1]'],
      ['IPv6 loopback', '[::1]'],
      ['userinfo trick', 'api.example.com@127.0.0.1'],
      ['another name', 'localhost'],
      ['link-local metadata address', '169.254.169.254'],
    ])('refuses %s as the host (403 host_not_allowed) before any request', async (_name, host) => {
      const count = upstream.seen.length;
      const res = await gw.call('any_host', { host });
      expect([res.status, res.body.reason_code]).toEqual([403, 'host_not_allowed']);
      expect(upstream.seen.length).toBe(count);
    });

    it('refuses a listed name that resolves to a loopback address, unless the tool allows private networks', async () => {
      const res = await gw.call('by_name', {});
      expect([res.status, res.body.reason_code]).toEqual([403, 'host_not_allowed']);
      expect((await gw.call('by_name_private_ok', {})).status).toBe(200);
    });
  });

  it('lists http tools to agents without hosts, URLs or secrets', async () => {
    const res = await gw.get('/api/tools');
    const text = JSON.stringify(res.body);
    expect(text).toContain('create_issue');
    expect(text).not.toMatch(/allowed_hosts|127\.0\.0\.1|UPSTREAM_TOKEN|secret:/);
  });
});
