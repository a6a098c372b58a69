import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/7';

/** A synchronous PING, so a suite can decide at collection time whether its Redis half runs. */
export function redisReachable(url = TEST_REDIS_URL): boolean {
  const { hostname, port } = new URL(url);
  const probe =
    `const s=require('net').connect(${Number(port) || 6379},'${hostname}');s.setTimeout(1000,()=>process.exit(1));` +
    `s.on('connect',()=>s.write('PING\\r\\n'));s.on('data',d=>process.exit(String(d).startsWith('+PONG')?0:1));s.on('error',()=>process.exit(1));`;
  return spawnSync(process.execPath, ['-e', probe], { timeout: 3000 }).status === 0;
}

/**
 * The stores a suite runs against: always memory; Redis when reachable. Without Redis the Redis
 * half is skipped with one line, except in CI (CI set), where Redis is required.
 */
export function storesUnderTest(): Array<[string, string | undefined]> {
  if (redisReachable())
    return [
      ['in-memory store', undefined],
      ['Redis store', TEST_REDIS_URL],
    ];
  if (process.env.CI) throw new Error(`CI is set but Redis is not reachable at ${TEST_REDIS_URL}`);
  process.stderr.write(`skipping the Redis half of this suite: no Redis at ${TEST_REDIS_URL} (set CI to require it)\n`);
  return [['in-memory store', undefined]];
}

/** A PostgreSQL server where tests may create and drop databases (CI: user postgres, trust auth). */
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A synchronous `SELECT 1`, so a suite can decide at collection time whether its PostgreSQL half runs. */
export function postgresReachable(url = TEST_POSTGRES_URL): boolean {
  const probe =
    `const {Client}=require('pg');const c=new Client({connectionString:${JSON.stringify(url)},connectionTimeoutMillis:1500});` +
    `c.connect().then(()=>c.query('SELECT 1')).then(()=>process.exit(0),()=>process.exit(1));`;
  return spawnSync(process.execPath, ['-e', probe], { timeout: 5000 }).status === 0;
}

/**
 * True when every server in `needs` answers. Otherwise: outside CI, one line on stderr saying what
 * is skipped and why, and false; in CI (CI set), an error, since CI must run it.
 */
export function serversFor(what: string, needs: { postgres?: boolean; redis?: boolean }): boolean {
  const missing = [
    ...(needs.postgres && !postgresReachable() ? [`no PostgreSQL at ${new URL(TEST_POSTGRES_URL).host}`] : []),
    ...(needs.redis && !redisReachable() ? [`no Redis at ${TEST_REDIS_URL}`] : []),
  ];
  if (missing.length === 0) return true;
  if (process.env.CI) throw new Error(`CI is set but ${what} needs: ${missing.join(', ')}`);
  process.stderr.write(`skipping ${what}: ${missing.join(', ')} (set CI to require it)\n`);
  return false;
}

/** A new, empty database on the test server; its URL. Drop it with dropTestDatabase. */
export async function createTestDatabase(): Promise<string> {
  const name = `agw_test_${randomBytes(6).toString('hex')}`;
  await withAdmin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropTestDatabase(databaseUrl: string): Promise<void> {
  const name = new URL(databaseUrl).pathname.slice(1);
  if (!/^agw_test_[0-9a-f]{12}$/.test(name)) throw new Error(`not a test database: ${name}`);
  await withAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

async function withAdmin(work: (client: Client) => Promise<unknown>): Promise<void> {
  const client = new Client({ connectionString: TEST_POSTGRES_URL });
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}
