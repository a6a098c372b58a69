import { randomBytes } from 'node:crypto';
import { Provider } from '@nestjs/common';
import { ConfigSwaps } from '../config/config-reload';
import { GatewayConfig } from '../config/gateway-config';
import { PostgresDatabase } from '../database/postgres-database';
import { SqliteDatabase } from '../database/sqlite-database';
import { SecretStore } from '../secrets/secret-store';
import { Redactor } from './redactor';

/**
 * The Redactor, keyed with a random per-installation key kept in the database (PostgreSQL when
 * configured, so every instance shares it), so markers stay the same across restarts. Known
 * secrets: whatever the SecretStore has seen. Forbidden argument names are redacted too, since a
 * denied call is still recorded with its arguments.
 */
export const redactorProvider: Provider = {
  provide: Redactor,
  inject: [SqliteDatabase, PostgresDatabase, GatewayConfig, SecretStore, ConfigSwaps],
  useFactory: async (sqlite: SqliteDatabase, postgres: PostgresDatabase | null, config: GatewayConfig, secrets: SecretStore, swaps: ConfigSwaps) => {
    const forbidden = (tools: GatewayConfig['tools']) => [...tools.values()].flatMap((t) => [...t.forbidden_fields]);
    const redactor = new Redactor(await (postgres ? sharedMarkerKey(postgres) : embeddedMarkerKey(sqlite)), secrets, forbidden(config.tools));
    swaps.follow((next) => {
      const keys = forbidden(next.tools);
      return () => redactor.setExtraSensitiveKeys(keys);
    });
    return redactor;
  },
};

function embeddedMarkerKey(database: SqliteDatabase): Buffer {
  database.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('redaction_marker_key', ?)").run(randomBytes(32));
  return database.db.prepare<[], { value: Buffer }>("SELECT value FROM meta WHERE key = 'redaction_marker_key'").get()!.value;
}

/** With several instances, one key for all, so a value gets the same marker whichever instance saw it. */
async function sharedMarkerKey(database: PostgresDatabase): Promise<Buffer> {
  await database.query("INSERT INTO gateway_meta (key, value) VALUES ('redaction_marker_key', $1) ON CONFLICT (key) DO NOTHING", [randomBytes(32)]);
  const { rows } = await database.query<{ value: Buffer }>("SELECT value FROM gateway_meta WHERE key = 'redaction_marker_key'");
  return rows[0].value;
}
