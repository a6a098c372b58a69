/**
 * Schema migrations of the shared PostgreSQL database, applied in order at start under an advisory
 * lock (two instances starting together do not race). `schema_migrations` records how many have
 * run. Append; never edit one that has shipped.
 */
export const PG_MIGRATIONS: readonly string[] = [];
