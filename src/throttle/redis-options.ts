import type { RedisOptions } from 'ioredis';

/**
 * Fail fast rather than queue: a command that cannot reach Redis errors within a retry, and the
 * request is refused (fail closed) instead of hanging.
 */
export const REDIS_CLIENT_OPTIONS: RedisOptions = {
  maxRetriesPerRequest: 1,
  connectTimeout: 2000,
  lazyConnect: false,
};
