import { MemoryIdempotencyStore } from './idempotency.store';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('MemoryIdempotencyStore', () => {
  it('claims once, then answers in progress, reused, or the stored response', async () => {
    const store = new MemoryIdempotencyStore();
    await expect(store.claim('a/r1', 'h1', 1000)).resolves.toEqual({ kind: 'claimed' });
    await expect(store.claim('a/r1', 'h1', 1000)).resolves.toEqual({ kind: 'in_progress' });
    await expect(store.claim('a/r1', 'h2', 1000)).resolves.toEqual({ kind: 'reused' });
    await store.complete('a/r1', 'h1', 200, { ok: true }, 1000);
    await expect(store.claim('a/r1', 'h1', 1000)).resolves.toEqual({ kind: 'replay', status: 200, body: { ok: true } });
    await expect(store.claim('a/r1', 'h2', 1000)).resolves.toEqual({ kind: 'reused' });
    await expect(store.claim('b/r1', 'h1', 1000)).resolves.toEqual({ kind: 'claimed' }); // keys are per agent
  });

  it('forgets a released claim and an expired entry', async () => {
    const store = new MemoryIdempotencyStore();
    await store.claim('a/r', 'h', 1000);
    await store.release('a/r');
    await expect(store.claim('a/r', 'h', 1000)).resolves.toEqual({ kind: 'claimed' });
    await store.complete('a/r', 'h', 200, {}, 20);
    await sleep(30);
    await expect(store.claim('a/r', 'h', 1000)).resolves.toEqual({ kind: 'claimed' });
  });

  it('stays bounded: expired entries are swept as new ones arrive', async () => {
    const store = new MemoryIdempotencyStore();
    for (let i = 0; i < 1000; i++) await store.complete(`a/${i}`, 'h', 200, {}, 10);
    await sleep(20);
    await store.claim('a/new', 'h', 1000);
    expect((store as unknown as { entries: Map<string, unknown> }).entries.size).toBe(1);
  });
});
