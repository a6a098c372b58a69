import { spawnSync } from 'node:child_process';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/7';

/** A synchronous PING, so a suite can decide at collection time whether its Redis half runs. */
export function redisReachable(url = TEST_REDIS_URL): boolean {
  const { hostname, port } = new URL(url);
  const probe = `const s=require('net').connect(${Number(port) || 6379},'${hostname}');s.setTimeout(1000,()=>process.exit(1));` +
    `s.on('connect',()=>s.write('PING\\r\\n'));s.on('data',d=>process.exit(String(d).startsWith('+PONG')?0:1));s.on('error',()=>process.exit(1));`;
  return spawnSync(process.execPath, ['-e', probe], { timeout: 3000 }).status === 0;
}

/**
 * The stores a suite runs against: always memory; Redis when reachable. Without Redis the Redis
 * half is skipped with one line, except in CI (CI set), where Redis is required.
 */
export function storesUnderTest(): Array<[string, string | undefined]> {
  if (redisReachable()) return [['in-memory store', undefined], ['Redis store', TEST_REDIS_URL]];
  if (process.env.CI) throw new Error(`CI is set but Redis is not reachable at ${TEST_REDIS_URL}`);
  process.stderr.write(`skipping the Redis half of this suite: no Redis at ${TEST_REDIS_URL} (set CI to require it)\n`);
  return [['in-memory store', undefined]];
}
