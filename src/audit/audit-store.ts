import type { AuditQuery } from './audit-index';
import type { AuditFields, AuditRecord, AuditSeal } from './audit-record';

/** The end of a chain: the last record's seq (0 before the first) and hash. */
export interface ChainHead {
  seq: number;
  hash: string;
}

/** One record as the writer sealed it: the exact line, and the fields stores index it by. */
export interface SealedRecord {
  seq: number;
  hash: string;
  ts: string;
  line: string;
  fields: AuditFields;
}

/** A committed record read back: its seq and its line, byte for byte. */
export interface StoredLine {
  seq: number;
  line: string;
}

/**
 * Where the audit chain is kept (chosen at start by `auditStoreProvider`): the JSONL file with its
 * SQLite index (one instance), or PostgreSQL (several instances, one chain each). The AuditLog
 * seals, chains, batches and redacts; a store only makes batches durable and reads them back.
 */
export abstract class AuditStore {
  /** Reads and checks the stored chain's head, which the next record continues; throws when the chain cannot be continued. */
  abstract open(seal: AuditSeal): Promise<ChainHead>;

  /** Makes `records` (the batch that continues `from`) durable as one unit; resolves only once they are. */
  abstract write(records: SealedRecord[], from: ChainHead): Promise<void>;

  /**
   * After a failed write: the head the store holds now, for the writer to continue from when it is
   * one it knows. Undefined when the store cannot tell before a restart (the file: its tail is unknown).
   */
  abstract reopen(): Promise<ChainHead | undefined>;

  /** Matching records, the newest `limit`, oldest first. */
  abstract find(query: AuditQuery): Promise<AuditRecord[]>;

  /** This instance's committed records after `seq`, at most `limit`, in seq order, as the exact lines written (the audit export tails the chain with it). */
  abstract readAfter(seq: number, limit: number): Promise<StoredLine[]>;

  /** The seq of this instance's last committed record (0 before the first). */
  abstract lastSeq(): Promise<number>;

  abstract close(): Promise<void>;
}

export function sameHead(a: ChainHead | undefined, b: ChainHead | undefined): boolean {
  return a !== undefined && b !== undefined && a.seq === b.seq && a.hash === b.hash;
}
