import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import type { RequestContext } from '../context/request-context';
import type { GatewayConfig } from '../config/gateway-config';
import { Idempotency, StoredReplay } from './idempotency.service';
import { SqliteIdempotencyStore } from './sqlite-idempotency.store';

const TOOL_TIMEOUT_MS = 1000;
const config = { settings: { idempotency_ttl_s: 600 }, tools: new Map([['t', { timeout_ms: TOOL_TIMEOUT_MS }]]) } as unknown as GatewayConfig;

describe('Idempotency', () => {
  const dir = mkdtempSync(join(tmpdir(), 'idempotency-'));
  const file = join(dir, 'replay.db');
  let store: SqliteIdempotencyStore;
  let idempotency: Idempotency;
  let n = 0;
  const call = (requestId = `req_${++n}`) =>
    ({ auditId: 'audit_x', startedAt: 0, agent: { id: 'agent_a' }, envelope: { request_id: requestId } }) as unknown as RequestContext;
  /** What a second request with the same id gets: 'claimed', a stored replay, or the refusal's reason_code. */
  const retry = async (requestId: string) => {
    try {
      await idempotency.claim(call(requestId), 'h');
      return 'claimed';
    } catch (err) {
      return err instanceof StoredReplay ? { replayed: err.status } : (err as { reasonCode: string }).reasonCode;
    }
  };

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(() => {
    store = new SqliteIdempotencyStore(file);
    idempotency = new Idempotency(store, config);
  });
  afterEach(() => store.onApplicationShutdown());
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('settles once: a second settle, or one for a call holding no key, does nothing', async () => {
    const ctx = call('req_once');
    await idempotency.claim(ctx, 'h');
    await idempotency.settle(ctx, 200, { first: true });
    await idempotency.settle(ctx, 503, { second: true });
    await idempotency.settle(call(), 200, {});
    await idempotency.settle(undefined, 200, {});
    await expect(retry('req_once')).resolves.toEqual({ replayed: 200 });
  });

  it('frees the key of a call refused before anything could run, but keeps a 5xx given once the tool may have run', async () => {
    const early = call('req_early');
    await idempotency.claim(early, 'h');
    await idempotency.settle(early, 503, {});
    await expect(retry('req_early')).resolves.toBe('claimed');

    const late = call('req_late');
    await idempotency.claim(late, 'h');
    await idempotency.settle(late, 503, {}, true);
    await expect(retry('req_late')).resolves.toEqual({ replayed: 503 });
  });

  it('never throws when the answer cannot be stored, and the key stays held: a retry is refused, not run', async () => {
    const ctx = call('req_unstored');
    await idempotency.claim(ctx, 'h');
    store.onApplicationShutdown();
    await expect(idempotency.settle(ctx, 200, {})).resolves.toBeUndefined();
    store = new SqliteIdempotencyStore(file);
    idempotency = new Idempotency(store, config);
    await expect(retry('req_unstored')).resolves.toBe('request_in_progress');
  });

  it('refuses a call cut off longer ago than any tool may run as interrupted, for the whole TTL', async () => {
    const ctx = call('req_cut_off');
    await idempotency.claim(ctx, 'h');
    const now = Date.now();
    const later = jest.spyOn(Date, 'now').mockReturnValue(now + TOOL_TIMEOUT_MS + 61_000);
    try {
      await expect(retry('req_cut_off')).resolves.toBe('request_interrupted');
      later.mockReturnValue(now + 599_000);
      await expect(retry('req_cut_off')).resolves.toBe('request_interrupted');
      later.mockReturnValue(now + 601_000);
      await expect(retry('req_cut_off')).resolves.toBe('claimed');
    } finally {
      later.mockRestore();
    }
  });
});
