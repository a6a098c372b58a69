// npm run audit:verify [-- <file>]: checks the audit log's hash chain (API.md §7).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { verifyAuditLog } from '../audit/audit-verify';
import { runtimePaths } from '../config/config.loader';

async function main(): Promise<number> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const paths = runtimePaths(process.env);
  const file = process.argv[2] ? resolve(process.argv[2]) : paths.auditLog;
  if (!existsSync(file)) {
    process.stderr.write(`audit:verify: ${file} does not exist\n`);
    return 2;
  }
  // The chain's head is kept in the index beside the data dir; a file given explicitly is checked
  // against it only when it is the gateway's own log.
  const index = file === paths.auditLog ? join(paths.dataDir, 'audit-index.db') : undefined;
  const result = await verifyAuditLog(file, index);
  if (!result.ok) {
    process.stdout.write(`BROKEN ${file}: line ${result.line}: ${result.problem}\n`);
    return 1;
  }
  const headNote = result.head ? `; matches the head kept in the database (seq ${result.head.seq})` : index ? '; no head in the database yet' : '';
  process.stdout.write(`OK ${file}: ${result.count} records, hash chain intact${headNote}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`audit:verify: ${err.message}\n`);
    process.exit(2);
  },
);
