// npm run audit:verify [-- <file>] [-- --rebuild-index] [-- --checkpoint <seq>:<hash>] [-- --database]:
// checks the audit log's chain under GATEWAY_AUDIT_KEY, against the heads kept outside it (the audit
// index; a checkpoint from the application log), and rebuilds a lost or outdated audit index once
// the chain holds; with --database, every instance's chain in PostgreSQL (GATEWAY_DATABASE_URL).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'pg';
import { parseCheckpoint, rebuildAuditIndex, verifyAuditDatabase, verifyAuditLog, VerifyResult } from '../audit/audit-verify';
import { SealKind } from '../audit/audit-record';
import { auditKey, ConfigError, databaseUrl, runtimePaths } from '../config/config.loader';

async function main(): Promise<number> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const { values, positionals } = parseArgs({
    options: { 'rebuild-index': { type: 'boolean', default: false }, database: { type: 'boolean', default: false }, checkpoint: { type: 'string' } },
    allowPositionals: true,
  });
  const paths = runtimePaths(process.env);
  const key = auditKey(process.env, '(environment)');
  if (values.database) {
    if (positionals.length > 0 || values['rebuild-index'] || values.checkpoint !== undefined) {
      process.stderr.write(
        'audit:verify: --database takes no file, no --rebuild-index and no --checkpoint (each chain is compared with its head in audit_heads)\n',
      );
      return 2;
    }
    return verifyDatabase(key);
  }
  const checkpoint = values.checkpoint === undefined ? undefined : parseCheckpoint(values.checkpoint);
  if (values.checkpoint !== undefined && !checkpoint) {
    process.stderr.write('audit:verify: --checkpoint takes <seq>:<hash>, the "checkpoint" field of an "audit checkpoint" line of the application log\n');
    return 2;
  }
  const file = positionals[0] ? resolve(positionals[0]) : paths.auditLog;
  if (!existsSync(file)) {
    process.stderr.write(`audit:verify: ${file} does not exist\n`);
    return 2;
  }
  // The chain's head is kept in the index in the data dir; a file given explicitly is checked
  // against it only when it is the gateway's own log.
  const index = file === paths.auditLog ? join(paths.dataDir, 'audit-index.db') : undefined;
  if (values['rebuild-index'] && !index) {
    process.stderr.write(`audit:verify: --rebuild-index works on the gateway's own log (${paths.auditLog})\n`);
    return 2;
  }
  const result: VerifyResult = values['rebuild-index']
    ? rebuildAuditIndex(file, index!, key, checkpoint)
    : await verifyAuditLog(file, { indexFile: index, key, checkpoint });
  if (!result.ok) {
    process.stdout.write(`BROKEN ${file}: line ${result.line}: ${result.problem}${values['rebuild-index'] ? '; the audit index was not rebuilt' : ''}\n`);
    return 1;
  }
  const sealNote = sealNoteOf(result.seal, result.count > 0);
  const tornNote = result.tornBytes
    ? `; the last line is incomplete (${result.tornBytes} bytes of a write cut short, never acknowledged): the gateway drops it when it starts`
    : '';
  const externalNote = result.checkpoint
    ? `; matches checkpoint seq ${result.checkpoint.seq}`
    : !(values['rebuild-index'] ? result.previousIndexHead : result.head) && result.count > 0
      ? '; no external head to compare with: records removed from the end of the log cannot be noticed (pass --checkpoint <seq>:<hash> from the newest "audit checkpoint" line of the application log)'
      : '';
  if (values['rebuild-index']) {
    process.stdout.write(
      `OK ${file}: ${result.count} records, hash chain intact${sealNote}${tornNote}; audit index rebuilt (head seq ${result.head?.seq ?? 0})${externalNote}\n`,
    );
    return 0;
  }
  const headNote = result.head
    ? `; matches the head kept in the database (seq ${result.head.seq})`
    : index && result.count > 0
      ? '; the audit index has no head: the gateway will not start until you run npm run audit:verify -- --rebuild-index'
      : '';
  process.stdout.write(`OK ${file}: ${result.count} records, hash chain intact${headNote}${sealNote}${tornNote}${externalNote}\n`);
  return 0;
}

async function verifyDatabase(key: Buffer | undefined): Promise<number> {
  const url = databaseUrl(process.env, '(environment)');
  if (!url) {
    process.stderr.write('audit:verify: --database needs GATEWAY_DATABASE_URL (postgres://…)\n');
    return 2;
  }
  const pool = new Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5000 });
  try {
    const { seal, chains } = await verifyAuditDatabase(pool, { key }).catch((err: Error & { code?: string }) => {
      // 42P01, undefined_table: no gateway has migrated this database.
      throw err.code === '42P01' ? new Error('the database has no audit tables: no gateway has started on GATEWAY_DATABASE_URL yet') : err;
    });
    for (const chain of chains) {
      process.stdout.write(
        chain.ok
          ? `OK instance ${chain.instance_id}: ${chain.count} records, hash chain intact; matches its head (seq ${chain.head.seq})\n`
          : `BROKEN instance ${chain.instance_id}: seq ${chain.seq}: ${chain.problem}\n`,
      );
    }
    const broken = chains.filter((c) => !c.ok).length;
    // How the chains are sealed is known only when they verified (a broken one may just need the key).
    process.stdout.write(
      `${broken > 0 ? 'BROKEN' : 'OK'}: ${chains.length} chain(s) in the database, ${broken} broken${broken > 0 ? '' : sealNoteOf(seal, chains.length > 0)}\n`,
    );
    return broken > 0 ? 1 : 0;
  } finally {
    await pool.end();
  }
}

function sealNoteOf(seal: SealKind, hasRecords: boolean): string {
  if (seal === 'hmac-sha256') return '; sealed with GATEWAY_AUDIT_KEY (HMAC-SHA256)';
  return hasRecords ? '; sealed without a key (SHA-256): proves the order of records, not who wrote them' : '';
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    const message = err instanceof ConfigError ? `${err.path}: ${err.problem}` : err.message;
    process.stderr.write(`audit:verify: ${message}\n`);
    process.exit(2);
  },
);
