import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signRequestHeaders } from '../src/auth/signature';
import { HeldUpstream } from './support/held-upstream';
import { envelope, HMAC_AGENT, TestGateway, TestGatewayOptions } from './support/test-gateway';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One signed request as an eavesdropper would capture it: sent again, byte for byte, with the same headers. */
function captured(gw: TestGateway, tool: string, args: unknown, requestId: string) {
  const body = JSON.stringify(envelope(HMAC_AGENT, tool, args, { requestId }));
  const headers = { 'Content-Type': 'application/json', ...signRequestHeaders(HMAC_AGENT, gw.keyOf(HMAC_AGENT), 'POST', '/api/tools/call', body) };
  return () => gw.http().post('/api/tools/call').set(headers).send(body);
}

describe('The embedded replay store', () => {
  const gateways: TestGateway[] = [];
  const held = new HeldUpstream();
  beforeAll(() => held.start());
  afterAll(() => held.stop());
  const start = async (options: TestGatewayOptions = {}) => {
    const gw = await new TestGateway(options).start();
    gateways.push(gw);
    return gw;
  };
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gw) => gw.stop()));
  });

  it('survives a restart: a signed call sent again afterwards gets the stored answer and does not run again', async () => {
    const gw = await start();
    const send = captured(gw, 'write_now', { path: 'once.txt', content: 'v1' }, 'req_before_restart');
    const first = await send();
    expect(first.status).toBe(200);
    writeFileSync(join(gw.workspace, 'once.txt'), 'changed since');

    await gw.restart();
    const again = await send();
    expect([again.status, again.headers['idempotent-replayed'], again.body]).toEqual([200, 'true', first.body]);
    expect(readFileSync(join(gw.workspace, 'once.txt'), 'utf8')).toBe('changed since');
    const events = gw
      .auditRecords()
      .filter((r) => r.request_id === 'req_before_restart')
      .map((r) => r.event);
    expect(events.filter((e) => e === 'outcome')).toHaveLength(1);
    expect(events.filter((e) => e === 'replay')).toHaveLength(1);
  });

  it('does not run a call again that was still running when the gateway went down', async () => {
    const gw = await start({ extraTools: held.tool('slow_call', 1000) });
    const send = captured(gw, 'slow_call', {}, 'req_cut_off');
    const cutOff = send().then(
      (res) => res.status,
      () => 'connection closed',
    );
    await sleep(300);
    gw.app.getHttpServer().closeAllConnections();
    await gw.restart();
    expect(await cutOff).toBe('connection closed');

    const again = await send();
    expect([again.status, again.body.status, again.body.reason_code]).toEqual([409, 'conflict', 'request_in_progress']);
    held.release();
  });

  it('keeps a large answer for replays as a stand-in: same status and ids, its size and SHA-256, nothing run again', async () => {
    const gw = await start();
    writeFileSync(join(gw.workspace, 'big.txt'), 'x'.repeat(200_000));
    const send = captured(gw, 'read_file', { path: 'big.txt' }, 'req_big_read');
    const first = await send();
    expect(first.status).toBe(200);
    expect(first.body.result.content).toHaveLength(200_000);
    writeFileSync(join(gw.workspace, 'big.txt'), 'changed since');

    const again = await send();
    expect([again.status, again.headers['idempotent-replayed']]).toEqual([200, 'true']);
    expect(again.text.length).toBeLessThan(1000);
    const firstBytes = Buffer.byteLength(first.text);
    expect(again.body).toEqual({
      success: true,
      status: 'executed',
      audit_id: first.body.audit_id,
      request_id: 'req_big_read',
      result: {
        replay_not_kept: expect.stringContaining(`${firstBytes} bytes`),
        bytes: firstBytes,
        sha256: createHash('sha256').update(first.text).digest('hex'),
      },
    });
    expect(gw.auditRecords().filter((r) => r.request_id === 'req_big_read' && r.event === 'outcome')).toHaveLength(1);
  });
});
