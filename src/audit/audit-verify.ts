import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Pool } from 'pg';
import { AuditIndex, IndexRow } from './audit-index';
import { AuditSeal, checkLine, GENESIS_HASH, SealKind } from './audit-record';

/** The last record read: its seq (0 before the first), its hash, and the byte offset just after it. */
export interface ChainPosition {
  seq: number;
  hash: string;
  offset: number;
}

export const CHAIN_START: ChainPosition = { seq: 0, hash: GENESIS_HASH, offset: 0 };

export type ScanResult = { ok: true; end: ChainPosition; tornBytes: number } | { ok: false; seq: number; problem: string };

const CHUNK = 1 << 20;

/**
 * Reads the complete lines of `fd` after `from`, checks each against the chain under `seal`, and
 * hands their index rows to `onRows`, a chunk at a time. A last line without its newline (a write
 * cut short) is not checked; its size is returned.
 */
export function scanChain(fd: number, from: ChainPosition, seal: AuditSeal, onRows: (rows: IndexRow[]) => void): ScanResult {
  const size = fstatSync(fd).size;
  // latin1 keeps one character per byte, so string lengths are byte offsets.
  let carry = '';
  const at = { ...from };
  for (let pos = from.offset; pos < size; pos += CHUNK) {
    const buffer = Buffer.alloc(Math.min(CHUNK, size - pos));
    const read = readSync(fd, buffer, 0, buffer.length, pos);
    const parts = (carry + buffer.toString('latin1', 0, read)).split('\n');
    carry = parts.pop()!;
    const rows: IndexRow[] = [];
    for (const part of parts) {
      const checked = checkLine(Buffer.from(part, 'latin1').toString('utf8'), at.seq + 1, at.hash, seal);
      if (!('record' in checked)) return { ok: false, seq: at.seq + 1, problem: checked.problem };
      const r = checked.record;
      rows.push({ seq: r.seq, audit_id: r.audit_id, request_id: r.request_id ?? null, agent_id: r.agent_id ?? null, hash: r.hash, offset: at.offset, length: part.length + 1 });
      at.seq = r.seq;
      at.hash = r.hash;
      at.offset += part.length + 1;
    }
    onRows(rows);
  }
  return { ok: true, end: at, tornBytes: carry.length };
}

export type VerifyResult =
  | {
      ok: true;
      count: number;
      seal: SealKind;
      head?: { seq: number; hash: string };
      /** Bytes of an incomplete last line: a write cut short, never acknowledged, which the gateway drops at start. */
      tornBytes?: number;
    }
  | { ok: false; line: number; problem: string };

export interface VerifyOptions {
  /** The audit index: the head it holds must still be in the file (catches records removed from the end). */
  indexFile?: string;
  /** GATEWAY_AUDIT_KEY: every record must carry its HMAC under this key. Without it, plain SHA-256 seals are checked. */
  key?: Buffer;
}

/**
 * Walks the whole chain once. Catches a record edited, removed, inserted, reordered or resealed
 * without the key (the first bad line is named) and, given the audit index, records removed from the end.
 */
export async function verifyAuditLog(file: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const head = options.indexFile && existsSync(options.indexFile) ? readHead(options.indexFile) : undefined;
  return checkChain(file, head, new AuditSeal(options.key), () => undefined);
}

/**
 * `npm run audit:verify -- --rebuild-index`: checks the whole chain under `key` (and against the
 * head the old index holds, if any), and only then replaces the index with one built from the file.
 */
export function rebuildAuditIndex(file: string, indexFile: string, key?: Buffer): VerifyResult {
  const index = new AuditIndex(indexFile);
  try {
    const oldHead = index.head();
    const result = index.replaceAll((insert) => checkChain(file, oldHead, new AuditSeal(key), insert));
    if (!result.ok) return result;
    const head = index.head();
    return { ...result, head: head && { seq: head.seq, hash: head.hash } };
  } finally {
    index.close();
  }
}

function checkChain(file: string, head: { seq: number; hash: string } | undefined, seal: AuditSeal, onRows: (rows: IndexRow[]) => void): VerifyResult {
  const fd = openSync(file, 'r');
  try {
    let hashAtHead: string | undefined;
    const scanned = scanChain(fd, CHAIN_START, seal, (rows) => {
      if (head) hashAtHead ??= rows.find((r) => r.seq === head.seq)?.hash;
      onRows(rows);
    });
    if (!scanned.ok) return { ok: false, line: scanned.seq, problem: scanned.problem };
    const count = scanned.end.seq;
    if (head) {
      if (count < head.seq) {
        return { ok: false, line: count + 1, problem: `the file ends at seq ${count}, but the audit index recorded seq ${head.seq}: records were removed from the end` };
      }
      if (hashAtHead !== head.hash) {
        return { ok: false, line: head.seq, problem: `record seq ${head.seq} differs from the one the audit index recorded` };
      }
    }
    return { ok: true, count, seal: seal.kind, head, ...(scanned.tornBytes > 0 && { tornBytes: scanned.tornBytes }) };
  } finally {
    closeSync(fd);
  }
}

function readHead(indexFile: string): { seq: number; hash: string } | undefined {
  const db = new Database(indexFile, { readonly: true, fileMustExist: true });
  try {
    return db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1').get();
  } finally {
    db.close();
  }
}

/** One instance's chain in the database: intact up to its head, or the first seq that is not. */
export type ChainVerdict = { instance_id: string } & ChainCheck;
type ChainCheck = { ok: true; count: number; head: { seq: number; hash: string } } | { ok: false; seq: number; problem: string };

const PAGE = 5000;

/**
 * `npm run audit:verify -- --database`: walks every instance's chain in PostgreSQL (one consistent
 * snapshot) under `key`. Per chain, catches a record edited, removed, inserted, reordered, moved
 * from another chain or resealed without the key, and a chain that does not end at its head in
 * `audit_heads` (records removed from the end, or added after it).
 */
export async function verifyAuditDatabase(pool: Pool, options: { key?: Buffer } = {}): Promise<{ seal: SealKind; chains: ChainVerdict[] }> {
  const seal = new AuditSeal(options.key);
  const client = await pool.connect();
  let failed = false;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows: instances } = await client.query<{ instance_id: string }>(
      'SELECT instance_id FROM audit_heads UNION SELECT DISTINCT instance_id FROM audit_records ORDER BY instance_id',
    );
    const chains: ChainVerdict[] = [];
    for (const { instance_id } of instances) {
      const { rows: heads } = await client.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_heads WHERE instance_id = $1', [instance_id]);
      const head = heads[0] && { seq: Number(heads[0].seq), hash: heads[0].hash };
      const walked = await walkChain((after) =>
        client
          .query<{ seq: string; line: string }>('SELECT seq, line FROM audit_records WHERE instance_id = $1 AND seq > $2 ORDER BY seq LIMIT $3', [instance_id, after, PAGE])
          .then((r) => r.rows.map((row) => ({ seq: Number(row.seq), line: row.line }))),
        instance_id,
        seal,
      );
      chains.push({ instance_id, ...chainEnd(walked, head) });
    }
    await client.query('COMMIT');
    return { seal: seal.kind, chains };
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    client.release(failed); // a connection left inside the snapshot is dropped, not reused
  }
}

type Walked = { ok: true; count: number; hash: string } | { ok: false; seq: number; problem: string };

/** Checks each stored record in seq order against the chain so far; `page(after)` gives the rows after seq `after`. */
async function walkChain(page: (after: number) => Promise<Array<{ seq: number; line: string }>>, instanceId: string, seal: AuditSeal): Promise<Walked> {
  let count = 0;
  let hash = GENESIS_HASH;
  for (let rows = await page(0); rows.length > 0; rows = await page(rows[rows.length - 1].seq)) {
    for (const row of rows) {
      const checked = checkLine(row.line, count + 1, hash, seal);
      if (!('record' in checked)) return { ok: false, seq: count + 1, problem: checked.problem };
      const { record } = checked;
      if (row.seq !== record.seq) return { ok: false, seq: count + 1, problem: `the record is stored under seq ${row.seq} (moved)` };
      if (record.instance_id !== instanceId) return { ok: false, seq: count + 1, problem: `the record belongs to instance "${record.instance_id ?? '(none)'}", not to this chain` };
      count += 1;
      hash = record.hash;
    }
  }
  return { ok: true, count, hash };
}

function chainEnd(walked: Walked, head: { seq: number; hash: string } | undefined): ChainCheck {
  if (!walked.ok) return walked;
  const { count } = walked;
  if (!head) return { ok: false, seq: count, problem: 'the chain has no head in audit_heads, so records removed from its end could not be noticed' };
  if (count < head.seq) return { ok: false, seq: count + 1, problem: `the chain ends at seq ${count}, but its head says seq ${head.seq}: records were removed from the end` };
  if (count > head.seq) return { ok: false, seq: head.seq + 1, problem: `the chain goes on after its head (seq ${head.seq}): records were added after it` };
  if (walked.hash !== head.hash) return { ok: false, seq: head.seq, problem: `record seq ${head.seq} differs from the one its head recorded` };
  return { ok: true, count, head };
}
