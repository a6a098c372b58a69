import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { join } from 'node:path';
import { signRequestHeaders } from '../src/auth/signature';
import { envelope, HMAC_AGENT, HMAC_SECRET, TestGateway } from './support/test-gateway';

/** One raw HTTP/1.1 request (supertest cannot send an absolute-form target); resolves the status line and body. */
function rawRequest(port: number, target: string, host: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.on('error', reject);
    socket.on('end', () => {
      const [head, ...rest] = data.split('\r\n\r\n');
      resolve({ status: Number(head.split(' ')[1]), body: rest.join('\r\n\r\n') });
    });
    const lines = [
      `POST ${target} HTTP/1.1`,
      `Host: ${host}`,
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Connection: close',
    ];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  });
}

const key = { alg: 'hmac-sha256' as const, secret: HMAC_SECRET };

describe('what a request is follows from the route it matched, never from how its URL is spelled', () => {
  let gw: TestGateway;
  let port: number;

  beforeAll(async () => {
    gw = await new TestGateway().start();
    await gw.app.listen(0, '127.0.0.1');
    port = (gw.app.getHttpServer().address() as AddressInfo).port;
  });
  afterAll(() => gw.stop());

  const recordsOf = (requestId: string) => gw.auditRecords().filter((r) => r.request_id === requestId);

  it.each([
    ['/API/TOOLS/CALL', 1],
    ['/api/tools/CALL', 2],
    ['/Api/Tools/Call', 3],
    ['/api/tools/call/', 4],
  ])('answers a signed call to %s with 404 and runs nothing; the request_id stays free for the real route', async (spelling, n) => {
    const file = `spelled-${n}.txt`;
    const body = envelope(HMAC_AGENT, 'write_now', { path: file, content: 'x' });
    const raw = JSON.stringify(body);
    const res = await gw
      .http()
      .post(spelling)
      .set({ 'Content-Type': 'application/json', ...signRequestHeaders(HMAC_AGENT, key, 'POST', spelling, raw) })
      .send(raw);
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ status: 'not_found', reason_code: 'not_found' });
    expect(existsSync(join(gw.workspace, file))).toBe(false);

    const real = await gw.post('/api/tools/call', body);
    expect(real.status).toBe(200);
    expect(recordsOf(body.request_id).map((r) => r.event)).toEqual(['decision', 'outcome']);
  });

  it('takes an absolute-form target that names this server as its path: audited, counted and replay-protected', async () => {
    const body = envelope(HMAC_AGENT, 'write_now', { path: 'absolute.txt', content: 'once' });
    const raw = JSON.stringify(body);
    const host = `127.0.0.1:${port}`;
    const headers = signRequestHeaders(HMAC_AGENT, key, 'POST', '/api/tools/call', raw);
    const first = await rawRequest(port, `http://${host}/api/tools/call`, host, headers, raw);
    expect(first.status).toBe(200);
    expect(existsSync(join(gw.workspace, 'absolute.txt'))).toBe(true);
    expect(recordsOf(body.request_id).map((r) => [r.event, r.path])).toEqual([
      ['decision', '/api/tools/call'],
      ['outcome', '/api/tools/call'],
    ]);

    // The same signed request again, by either spelling: the stored answer, nothing runs twice.
    const again = await gw.post('/api/tools/call', body);
    expect(again.status).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.audit_id).toBe(JSON.parse(first.body).audit_id);

    const metrics = await gw.http().get('/metrics');
    expect(metrics.text).toMatch(/^gateway_tool_calls_total\{channel="rest",tool="write_now",decision="allow",status="executed"\} [1-9]/m);
  });

  it.each([
    ['another host', (p: number) => `http://other.example:${p}/api/tools/call`],
    ['another port', (p: number) => `http://127.0.0.1:${p + 1}/api/tools/call`],
    ['credentials', (p: number) => `http://user:pw@127.0.0.1:${p}/api/tools/call`],
    ['another scheme', (p: number) => `ftp://127.0.0.1:${p}/api/tools/call`],
  ])('refuses an absolute-form target naming %s (400) and runs nothing', async (_what, target) => {
    const body = envelope(HMAC_AGENT, 'write_now', { path: 'elsewhere.txt', content: 'x' });
    const raw = JSON.stringify(body);
    const res = await rawRequest(port, target(port), `127.0.0.1:${port}`, signRequestHeaders(HMAC_AGENT, key, 'POST', '/api/tools/call', raw), raw);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ status: 'invalid_request', reason_code: 'invalid_request_target' });
    expect(existsSync(join(gw.workspace, 'elsewhere.txt'))).toBe(false);
  });

  it('still records a refused body (413) on the tool-call route, judged after routing', async () => {
    const raw = JSON.stringify({ ...envelope(HMAC_AGENT, 'read_file', { path: 'x' }), padding: 'x'.repeat(70_000) });
    const res = await gw.http().post('/api/tools/call').set('Content-Type', 'application/json').send(raw);
    expect(res.status).toBe(413);
    const records = gw.auditRecords().filter((r) => r.audit_id === res.body.audit_id);
    expect(records).toEqual([
      expect.objectContaining({ event: 'request', path: '/api/tools/call', http_status: 413, reason_code: 'body_too_large', audit_id: res.body.audit_id }),
    ]);
  });
});
