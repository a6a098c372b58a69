import { randomBytes } from 'node:crypto';
import { Provider } from '@nestjs/common';
import { GatewayConfig } from '../config/gateway-config';
import { SqliteDatabase } from '../database/sqlite-database';
import { SecretStore } from '../secrets/secret-store';
import { Redactor } from './redactor';

/**
 * The Redactor, keyed with a random per-installation key kept in the database, so markers stay
 * the same across restarts. Known secrets: whatever the SecretStore has seen. Forbidden argument names are
 * redacted too, since a denied call is still recorded with its arguments.
 */
export const redactorProvider: Provider = {
  provide: Redactor,
  inject: [SqliteDatabase, GatewayConfig, SecretStore],
  useFactory: (database: SqliteDatabase, config: GatewayConfig, secrets: SecretStore) => {
    const db = database.db;
    db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('redaction_marker_key', ?)").run(randomBytes(32));
    const key = db.prepare<[], { value: Buffer }>("SELECT value FROM meta WHERE key = 'redaction_marker_key'").get()!.value;
    const forbidden = [...config.tools.values()].flatMap((t) => [...t.forbidden_fields]);
    return new Redactor(key, secrets, forbidden);
  },
};
