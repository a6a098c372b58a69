import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { signRequestHeaders } from '../src/auth/signature';
import { HeldUpstream } from './support/held-upstream';
import { envelope, HMAC_AGENT, HMAC_SECRET, TestGateway, TestGatewayOptions } from './support/test-gateway';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The gateway on a real port of 127.0.0.1 (supertest then uses it too). */
async function listening(options: TestGatewayOptions): Promise<{ gw: TestGateway; port: number }> {
  const gw = await new TestGateway(options).start();
  const server = gw.app.getHttpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { gw, port: (server.address() as AddressInfo).port };
}

/**
 * A client that connects, sends `bytes` and then nothing more: what the server answered and
 * whether it closed the connection within `waitMs`.
 */
async function stalledClient(port: number, bytes: string, waitMs = 3000): Promise<{ answer: string; closed: boolean; afterMs: number }> {
  const socket = connect(port, '127.0.0.1');
  const started = performance.now();
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
  socket.on('error', () => undefined);
  socket.on('connect', () => void (bytes && socket.write(bytes)));
  const closed = await new Promise<boolean>((resolve) => {
    socket.once('close', () => resolve(true));
    setTimeout(() => resolve(false), waitMs);
  });
  socket.destroy();
  return { answer, closed, afterMs: performance.now() - started };
}

const REQUEST_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n';

describe('slow clients: header and request timeouts', () => {
  let gw: TestGateway;
  let port: number;
  const held = new HeldUpstream();

  beforeAll(async () => {
    await held.start();
    ({ gw, port } = await listening({ httpLimits: { headersTimeoutMs: 500, requestTimeoutMs: 1000 }, extraTools: held.tool('slow_call') }));
  });
  afterAll(async () => {
    await gw.stop();
    await held.stop();
  });

  it('closes a connection that never sends a request, once the header timeout is up', async () => {
    const client = await stalledClient(port, '');
    expect(client).toMatchObject({ closed: true, answer: REQUEST_TIMEOUT });
    expect(client.afterMs).toBeGreaterThanOrEqual(450);
  });

  it('answers 408 and closes a connection that sent half its headers and stalled', async () => {
    const client = await stalledClient(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    expect(client).toMatchObject({ closed: true, answer: REQUEST_TIMEOUT });
    expect(client.afterMs).toBeGreaterThanOrEqual(450);
  });

  it('answers 408 and closes a signed upload that stalled halfway; the tool never runs', async () => {
    const body = JSON.stringify(envelope(HMAC_AGENT, 'write_now', { path: 'stalled.txt', content: 'x'.repeat(200) }));
    const headers = signRequestHeaders(HMAC_AGENT, { alg: 'hmac-sha256', secret: HMAC_SECRET }, 'POST', '/api/tools/call', body);
    const head = [
      'POST /api/tools/call HTTP/1.1',
      'Host: 127.0.0.1',
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ].join('\r\n');
    const client = await stalledClient(port, `${head}\r\n\r\n${body.slice(0, body.length / 2)}`);
    expect(client).toMatchObject({ closed: true, answer: REQUEST_TIMEOUT });
    expect(client.afterMs).toBeGreaterThanOrEqual(950);
    expect(existsSync(join(gw.workspace, 'stalled.txt'))).toBe(false);
  });

  it('lets a tool run longer than the request timeout: the limit is on sending the request, not on the answer', async () => {
    const call = gw.call('slow_call', {}).then((res) => res);
    await sleep(1600);
    held.release();
    const res = await call;
    expect([res.status, res.body.status, res.body.result?.body]).toEqual([200, 'executed', { released: true }]);
  });
});

describe('connection cap', () => {
  it('closes connections beyond GATEWAY_MAX_CONNECTIONS on arrival, and serves again once some are gone', async () => {
    const { gw, port } = await listening({ httpLimits: { maxConnections: 3 } });
    const server = gw.app.getHttpServer();
    const idle = [0, 1, 2].map(() => connect(port, '127.0.0.1').on('error', () => undefined));
    try {
      while ((await new Promise<number>((resolve) => server.getConnections((_err, n) => resolve(n)))) < 3) await sleep(10);
      const healthz = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n';
      const refused = await stalledClient(port, healthz);
      expect(refused).toMatchObject({ closed: true, answer: '' });
      expect(refused.afterMs).toBeLessThan(400);

      idle[0].destroy();
      while ((await new Promise<number>((resolve) => server.getConnections((_err, n) => resolve(n)))) > 2) await sleep(10);
      expect((await stalledClient(port, healthz)).answer).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\{"status":"ok"\}$/);
    } finally {
      idle.forEach((socket) => socket.destroy());
      await gw.stop();
    }
  });
});
