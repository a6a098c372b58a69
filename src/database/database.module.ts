import { Global, Module, Provider } from '@nestjs/common';
import { GatewayConfig } from '../config/gateway-config';
import { DatabaseUnavailable, PostgresDatabase } from './postgres-database';
import { SqliteDatabase } from './sqlite-database';

/**
 * The shared PostgreSQL database when GATEWAY_DATABASE_URL is set, migrated before anything uses
 * it and closed at shutdown; `null` otherwise, and then nothing connects to PostgreSQL. Inject it
 * only into provider factories, which pick the shared or the embedded implementation of a store.
 */
const postgresProvider: Provider = {
  provide: PostgresDatabase,
  inject: [GatewayConfig],
  useFactory: async (config: GatewayConfig): Promise<PostgresDatabase | null> => {
    if (!config.databaseUrl) return null;
    const database = new PostgresDatabase(config.databaseUrl);
    try {
      await database.migrate();
    } catch (err) {
      await database.close();
      // What pg said (host and port, or the server's message), never the URL: it may hold a password.
      const cause = err instanceof DatabaseUnavailable ? err.cause : err;
      throw new Error(`PostgreSQL (GATEWAY_DATABASE_URL) cannot be reached or migrated: ${(cause as Error).message}`);
    }
    return database;
  },
};

@Global()
@Module({ providers: [SqliteDatabase, postgresProvider], exports: [SqliteDatabase, PostgresDatabase] })
export class DatabaseModule {}
