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
      rows.push({
        seq: r.seq,
        audit_id: r.audit_id,
        request_id: r.request_id ?? null,
        agent_id: r.agent_id ?? null,
        hash: r.hash,
        offset: at.offset,
        length: part.length + 1,
      });
      at.seq = r.seq;
      at.hash = r.hash;
      at.offset += part.length + 1;
    }
    onRows(rows);
  }
  return { ok: true, end: at, tornBytes: carry.length };
}

/**
 * A chain head kept outside the log, to compare the log with: the audit index's newest row, or a
 * checkpoint the writer logged (`audit checkpoint` lines of the application log). Only such a head
 * shows records removed from the end of the log: the chain itself cannot.
 */
export interface ExternalHead {
  seq: number;
  hash: string;
  source: 'audit index' | 'checkpoint';
}

export type VerifyResult =
  | {
      ok: true;
      count: number;
      seal: SealKind;
      /** The audit index's head, when it had one (it matched). */
      head?: { seq: number; hash: string };
      /** --rebuild-index: the head the old index held (it matched); `head` is then the new index's. */
      previousIndexHead?: { seq: number; hash: string };
      /** The checkpoint given (it matched). Neither this nor `head`: nothing could show records removed from the end. */
      checkpoint?: { seq: number; hash: string };
      /** Bytes of an incomplete last line: a write cut short, never acknowledged, which the gateway drops at start. */
      tornBytes?: number;
    }
  | { ok: false; line: number; problem: string };

export interface VerifyOptions {
  /** The audit index: the head it holds must still be in the file (catches records removed from the end). */
  indexFile?: string;
  /** A checkpoint from the application log: its record must still be in the file, unchanged. */
  checkpoint?: { seq: number; hash: string };
  /** GATEWAY_AUDIT_KEY: every record must carry its HMAC under this key. Without it, plain SHA-256 seals are checked. */
  key?: Buffer;
}

/** `<seq>:<hash>`, as an `audit checkpoint` line's `checkpoint` field carries it; undefined when malformed. */
export function parseCheckpoint(text: string): { seq: number; hash: string } | undefined {
  const match = /^([1-9][0-9]{0,15}):([0-9a-f]{64})$/.exec(text.trim());
  return match ? { seq: Number(match[1]), hash: match[2] } : undefined;
}

/**
 * Walks the whole chain once. Catches a record edited, removed, inserted, reordered or resealed
 * without the key (the first bad line is named) and, given an external head (the audit index, a
 * checkpoint), records removed from the end.
 */
export async function verifyAuditLog(file: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const indexHead = options.indexFile && existsSync(options.indexFile) ? readHead(options.indexFile) : undefined;
  return checkChain(file, externalHeads(indexHead, options.checkpoint), new AuditSeal(options.key), () => undefined);
}

/**
 * `npm run audit:verify -- --rebuild-index`: checks the whole chain under `key` (and against the
 * head the old index holds, if any, and the checkpoint given), and only then replaces the index
 * with one built from the file.
 */
export function rebuildAuditIndex(file: string, indexFile: string, key?: Buffer, checkpoint?: { seq: number; hash: string }): VerifyResult {
  const index = new AuditIndex(indexFile);
  try {
    const oldHead = index.head();
    const result = index.replaceAll((insert) => checkChain(file, externalHeads(oldHead, checkpoint), new AuditSeal(key), insert));
    if (!result.ok) return result;
    const head = index.head();
    return { ...result, head: head && { seq: head.seq, hash: head.hash }, ...(result.head && { previousIndexHead: result.head }) };
  } finally {
    index.close();
  }
}

function externalHeads(indexHead: { seq: number; hash: string } | undefined, checkpoint: { seq: number; hash: string } | undefined): ExternalHead[] {
  return [
    ...(indexHead ? [{ seq: indexHead.seq, hash: indexHead.hash, source: 'audit index' as const }] : []),
    ...(checkpoint ? [{ ...checkpoint, source: 'checkpoint' as const }] : []),
  ];
}

function checkChain(file: string, heads: ExternalHead[], seal: AuditSeal, onRows: (rows: IndexRow[]) => void): VerifyResult {
  const fd = openSync(file, 'r');
  try {
    const hashAt = new Map<number, string>();
    const scanned = scanChain(fd, CHAIN_START, seal, (rows) => {
      for (const head of heads) {
        const row = rows.find((r) => r.seq === head.seq);
        if (row) hashAt.set(head.seq, row.hash);
      }
      onRows(rows);
    });
    if (!scanned.ok) return { ok: false, line: scanned.seq, problem: scanned.problem };
    const count = scanned.end.seq;
    for (const head of heads) {
      if (count < head.seq) {
        return {
          ok: false,
          line: count + 1,
          problem: `the file ends at seq ${count}, but the ${head.source} recorded seq ${head.seq}: records were removed from the end`,
        };
      }
      if (hashAt.get(head.seq) !== head.hash) {
        return { ok: false, line: head.seq, problem: `record seq ${head.seq} differs from the one the ${head.source} recorded` };
      }
    }
    const [indexHead, checkpoint] = (['audit index', 'checkpoint'] as const).map((source) => heads.find((h) => h.source === source));
    return {
      ok: true,
      count,
      seal: seal.kind,
      ...(indexHead && { head: { seq: indexHead.seq, hash: indexHead.hash } }),
      ...(checkpoint && { checkpoint: { seq: checkpoint.seq, hash: checkpoint.hash } }),
      ...(scanned.tornBytes > 0 && { tornBytes: scanned.tornBytes }),
    };
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
      const walked = await walkChain(
        (after) =>
          client
            .query<{ seq: string; line: string }>('SELECT seq, line FROM audit_records WHERE instance_id = $1 AND seq > $2 ORDER BY seq LIMIT $3', [
              instance_id,
              after,
              PAGE,
            ])
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
      if (record.instance_id !== instanceId)
        return { ok: false, seq: count + 1, problem: `the record belongs to instance "${record.instance_id ?? '(none)'}", not to this chain` };
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
  if (count < head.seq)
    return { ok: false, seq: count + 1, problem: `the chain ends at seq ${count}, but its head says seq ${head.seq}: records were removed from the end` };
  if (count > head.seq) return { ok: false, seq: head.seq + 1, problem: `the chain goes on after its head (seq ${head.seq}): records were added after it` };
  if (walked.hash !== head.hash) return { ok: false, seq: head.seq, problem: `record seq ${head.seq} differs from the one its head recorded` };
  return { ok: true, count, head };
}
