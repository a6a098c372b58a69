import { MemoryThrottlerStorage } from './memory-throttler.storage';

describe('MemoryThrottlerStorage (fixed window, the rules of the Redis script)', () => {
  let storage: MemoryThrottlerStorage;
  let now: number;
  beforeEach(() => {
    now = 1_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    storage = new MemoryThrottlerStorage();
  });
  afterEach(() => {
    storage.onModuleDestroy();
    jest.restoreAllMocks();
  });

  it('counts hits in the window and blocks the one over the limit for blockDuration', async () => {
    for (let i = 1; i <= 3; i++)
      expect(await storage.increment('agent/a', 10_000, 3, 10_000, 'default')).toEqual({
        totalHits: i,
        timeToExpire: 10,
        isBlocked: false,
        timeToBlockExpire: 0,
      });
    now += 4_000;
    expect(await storage.increment('agent/a', 10_000, 3, 10_000, 'default')).toEqual({ totalHits: 4, timeToExpire: 6, isBlocked: true, timeToBlockExpire: 10 });
    expect((await storage.increment('agent/b', 10_000, 3, 10_000, 'default')).isBlocked).toBe(false); // another key
    expect((await storage.increment('agent/a', 10_000, 3, 10_000, 'tool')).isBlocked).toBe(false); // another throttler
  });

  it('stays blocked until the block ends, then starts a fresh window', async () => {
    for (let i = 0; i < 3; i++) await storage.increment('k', 1_000, 2, 5_000, 'default');
    now += 2_000; // the window is over, the block is not
    expect(await storage.increment('k', 1_000, 2, 5_000, 'default')).toMatchObject({ isBlocked: true, timeToBlockExpire: 3 });
    now += 3_000;
    expect(await storage.increment('k', 1_000, 2, 5_000, 'default')).toEqual({ totalHits: 1, timeToExpire: 1, isBlocked: false, timeToBlockExpire: 0 });
  });
});
