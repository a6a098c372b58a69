// npm run audit:verify [-- <file>] [-- --rebuild-index]: checks the audit log's chain (API.md §7)
// under GATEWAY_AUDIT_KEY, and rebuilds a lost or outdated audit index once the chain holds.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { rebuildAuditIndex, verifyAuditLog, VerifyResult } from '../audit/audit-verify';
import { auditKey, ConfigError, runtimePaths } from '../config/config.loader';

async function main(): Promise<number> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const { values, positionals } = parseArgs({ options: { 'rebuild-index': { type: 'boolean', default: false } }, allowPositionals: true });
  const paths = runtimePaths(process.env);
  const key = auditKey(process.env, '(environment)');
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
  const result: VerifyResult = values['rebuild-index'] ? rebuildAuditIndex(file, index!, key) : await verifyAuditLog(file, { indexFile: index, key });
  if (!result.ok) {
    process.stdout.write(`BROKEN ${file}: line ${result.line}: ${result.problem}${values['rebuild-index'] ? '; the audit index was not rebuilt' : ''}\n`);
    return 1;
  }
  const sealNote =
    result.seal === 'hmac-sha256'
      ? '; sealed with GATEWAY_AUDIT_KEY (HMAC-SHA256)'
      : result.count > 0
        ? '; sealed without a key (SHA-256): proves the order of records, not who wrote them'
        : '';
  const tornNote = result.tornBytes ? `; the last line is incomplete (${result.tornBytes} bytes of a write cut short, never acknowledged): the gateway drops it when it starts` : '';
  if (values['rebuild-index']) {
    process.stdout.write(`OK ${file}: ${result.count} records, hash chain intact${sealNote}${tornNote}; audit index rebuilt (head seq ${result.head?.seq ?? 0})\n`);
    return 0;
  }
  const headNote = result.head
    ? `; matches the head kept in the database (seq ${result.head.seq})`
    : index && result.count > 0
      ? '; the audit index has no head: the gateway will not start until you run npm run audit:verify -- --rebuild-index'
      : '';
  process.stdout.write(`OK ${file}: ${result.count} records, hash chain intact${headNote}${sealNote}${tornNote}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    const message = err instanceof ConfigError ? `${err.path}: ${err.problem}` : err.message;
    process.stderr.write(`audit:verify: ${message}\n`);
    process.exit(2);
  },
);
