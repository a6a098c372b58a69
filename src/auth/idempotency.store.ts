import { sha256Hex } from '../core/hashing';

/** What a second request with the same (agent_id, request_id) gets. */
export type Claim =
  | { kind: 'claimed' }
  /** `since`: when the holder claimed the key (Unix ms), so a claim cut off by a crash can be told from a running one. */
  | { kind: 'in_progress'; since: number }
  | { kind: 'reused' }
  | { kind: 'replay'; status: number; body: unknown };

/** Stored per key: who holds it and, once done, the first response. */
export interface IdempotencyEntry {
  state: 'in_progress' | 'done';
  bodyHash: string;
  /** in_progress: when the key was claimed (Unix ms). */
  since?: number;
  status?: number;
  body?: unknown;
}

export function claimFromEntry(entry: IdempotencyEntry, bodyHash: string): Claim {
  if (entry.bodyHash !== bodyHash) return { kind: 'reused' };
  if (entry.state === 'in_progress') return { kind: 'in_progress', since: entry.since ?? 0 };
  return { kind: 'replay', status: entry.status!, body: entry.body };
}

/**
 * Replay and idempotency keys. On disk by default (SQLite in the data dir, so a restart does not
 * forget them); Redis with GATEWAY_REDIS_URL, so instances share them. A key is never dropped
 * before its TTL (that would let the call run again); what is bounded is the answer kept with it
 * (see keptAnswer).
 */
export abstract class IdempotencyStore {
  /** Atomically takes the key for this body for `ttlMs`, or says who has it. */
  abstract claim(key: string, bodyHash: string, ttlMs: number): Promise<Claim>;
  /** Stores the first response (bounded by keptAnswer), kept for `ttlMs` (a store may count it from the claim). */
  abstract complete(key: string, bodyHash: string, status: number, body: unknown, ttlMs: number): Promise<void>;
  /** Forgets a claim whose answer is not to be replayed (nothing ran: 429, 503). */
  abstract release(key: string): Promise<void>;
  /** Throws when the store is not usable (readiness). */
  abstract ping(): Promise<void>;
}

/** The most an answer may take, serialized, to be kept whole for replays. */
export const MAX_KEPT_ANSWER_BYTES = 64 * 1024;

/** An answer as stored: the JSON sent first, or a stand-in for it (`whole` false). */
export interface KeptAnswer {
  json: string;
  bytes: number;
  whole: boolean;
}

/** The first answer, serialized as it was sent, or its stand-in when it is over `maxBytes`. */
export function keptAnswer(body: unknown, maxBytes = MAX_KEPT_ANSWER_BYTES): KeptAnswer {
  const json = JSON.stringify(body) ?? 'null';
  const bytes = Buffer.byteLength(json);
  return bytes <= maxBytes ? { json, bytes, whole: true } : standInFor(body, json, bytes);
}

// What a stand-in keeps of the first answer: what a client acts on, all short.
const KEPT_FIELDS = ['success', 'status', 'reason_code', 'error', 'approval_id', 'audit_id', 'request_id'];
const MAX_KEPT_FIELD_CHARS = 256;

/**
 * A small answer in place of a first answer too big to keep: the same status and ids, and in place
 * of its bulk (`result`, or `details` for an error) a note with its size and SHA-256, so a client
 * holding the first answer can match it.
 */
export function standInFor(first: unknown, json: string, bytes: number): KeptAnswer {
  const fields = typeof first === 'object' && first !== null && !Array.isArray(first) ? (first as Record<string, unknown>) : {};
  const standIn: Record<string, unknown> = {};
  for (const name of KEPT_FIELDS) {
    const value = fields[name];
    if (typeof value === 'boolean' || typeof value === 'number' || (typeof value === 'string' && value.length <= MAX_KEPT_FIELD_CHARS)) standIn[name] = value;
  }
  const note = {
    replay_not_kept: `The first answer was ${bytes} bytes, too large to keep for replays; only its size and SHA-256 are kept`,
    bytes,
    sha256: sha256Hex(json),
  };
  if ('result' in fields || !('details' in fields)) standIn.result = note;
  else standIn.details = [note];
  const standInJson = JSON.stringify(standIn);
  return { json: standInJson, bytes: Buffer.byteLength(standInJson), whole: false };
}
