import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import Database from 'better-sqlite3';
import { GatewayConfig } from '../config/gateway-config';
import { SQLITE_MIGRATIONS } from './migrations';

/**
 * Opens (creating) a SQLite file in WAL mode and applies `migrations` it has not seen yet;
 * PRAGMA user_version records how many have run.
 */
export function openSqlite(file: string, migrations: readonly string[], synchronous: 'FULL' | 'NORMAL'): Database.Database {
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('busy_timeout = 5000');
  const applied = db.pragma('user_version', { simple: true }) as number;
  if (applied > migrations.length) throw new Error(`${file} was written by a newer gateway (schema version too high)`);
  db.transaction(() => {
    migrations.slice(applied).forEach((sql) => db.exec(sql));
    db.pragma(`user_version = ${migrations.length}`);
  })();
  return db;
}

/** The embedded database, `$GATEWAY_DATA_DIR/gateway.db` (approvals, meta). */
@Injectable()
export class SqliteDatabase implements OnApplicationShutdown {
  readonly db: Database.Database;

  constructor(config: GatewayConfig) {
    this.db = openSqlite(join(config.paths.dataDir, 'gateway.db'), SQLITE_MIGRATIONS, 'FULL');
  }

  /** True when a trivial query answers (readiness). */
  isUsable(): boolean {
    try {
      this.db.prepare('SELECT 1').get();
      return true;
    } catch {
      return false;
    }
  }

  onApplicationShutdown(): void {
    if (this.db.open) this.db.close();
  }
}
