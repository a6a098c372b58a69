import { randomBytes } from 'node:crypto';
import { Provider } from '@nestjs/common';
import { GatewayConfig } from '../config/gateway-config';
import { SqliteDatabase } from '../database/sqlite-database';
import { Redactor } from './redactor';

/**
 * The Redactor, keyed with a random per-installation key kept in the database, so markers stay
 * the same across restarts. Known secrets: the agents' HMAC keys. Forbidden argument names are
 * redacted too, since a denied call is still recorded with its arguments.
 */
export const redactorProvider: Provider = {
  provide: Redactor,
  inject: [SqliteDatabase, GatewayConfig],
  useFactory: (database: SqliteDatabase, config: GatewayConfig) => {
    const db = database.db;
    db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('redaction_marker_key', ?)").run(randomBytes(32));
    const key = db.prepare<[], { value: Buffer }>("SELECT value FROM meta WHERE key = 'redaction_marker_key'").get()!.value;
    const hmacSecrets = [...config.agents.values()].flatMap((a) => (a.key.alg === 'hmac-sha256' ? [a.key.secret.toString('utf8')] : []));
    const forbidden = [...config.tools.values()].flatMap((t) => [...t.forbidden_fields]);
    return new Redactor(key, hmacSecrets, forbidden);
  },
};
