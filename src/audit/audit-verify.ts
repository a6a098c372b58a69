import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { checkLine, GENESIS_HASH } from './audit-record';

export type VerifyResult =
  | { ok: true; count: number; head?: { seq: number; hash: string } }
  | { ok: false; line: number; problem: string };

/**
 * Walks the whole chain once, in a stream. Catches a record edited, removed, inserted or
 * reordered (the first bad line is named) and, given the audit index, records removed from the end.
 */
export async function verifyAuditLog(file: string, indexFile?: string): Promise<VerifyResult> {
  const head = indexFile && existsSync(indexFile) ? readHead(indexFile) : undefined;
  let count = 0;
  let prev = GENESIS_HASH;
  let hashAtHead: string | undefined;
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of lines) {
    const checked = checkLine(line, count + 1, prev);
    if (!('record' in checked)) {
      lines.close();
      return { ok: false, line: count + 1, problem: checked.problem };
    }
    count += 1;
    prev = checked.record.hash;
    if (head && count === head.seq) hashAtHead = prev;
  }
  if (head) {
    if (count < head.seq) {
      return { ok: false, line: count + 1, problem: `the file ends at seq ${count}, but the audit index recorded seq ${head.seq}: records were removed from the end` };
    }
    if (hashAtHead !== head.hash) {
      return { ok: false, line: head.seq, problem: `record seq ${head.seq} differs from the one the audit index recorded` };
    }
  }
  return { ok: true, count, head };
}

function readHead(indexFile: string): { seq: number; hash: string } | undefined {
  const db = new Database(indexFile, { readonly: true, fileMustExist: true });
  try {
    return db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1').get();
  } finally {
    db.close();
  }
}
