import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import Database from 'better-sqlite3';
import { GatewayConfig } from '../config/gateway-config';
import { SQLITE_MIGRATIONS } from './migrations';

/** The embedded database, `$GATEWAY_DATA_DIR/gateway.db`: WAL mode, migrated at start. */
@Injectable()
export class SqliteDatabase implements OnApplicationShutdown {
  readonly db: Database.Database;

  constructor(config: GatewayConfig) {
    mkdirSync(config.paths.dataDir, { recursive: true });
    this.db = new Database(join(config.paths.dataDir, 'gateway.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
  }

  private migrate(): void {
    const applied = this.db.pragma('user_version', { simple: true }) as number;
    if (applied > SQLITE_MIGRATIONS.length) throw new Error('The database was written by a newer gateway (schema version too high)');
    this.db.transaction(() => {
      SQLITE_MIGRATIONS.slice(applied).forEach((sql) => this.db.exec(sql));
      this.db.pragma(`user_version = ${SQLITE_MIGRATIONS.length}`);
    })();
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
