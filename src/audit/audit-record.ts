import { sha256Hex } from '../auth/signature';

export const GENESIS_HASH = '0'.repeat(64);

export type AuditEvent = 'request' | 'decision' | 'outcome' | 'approval' | 'replay';

/** What a caller records; the writer adds ts, seq, prev_hash and hash. API.md §7. */
export interface AuditFields {
  audit_id: string;
  event: AuditEvent;
  request_id?: string;
  agent_id?: string;
  agent_version?: string;
  role?: string;
  tool?: string;
  decision?: 'allow' | 'deny' | 'pending';
  status?: string;
  reason_code?: string;
  http_status?: number;
  arguments?: unknown;
  approval_id?: string;
  approver_id?: string;
  duration_ms?: number;
  client_ip?: string;
  method?: string;
  path?: string;
}

export interface AuditRecord extends AuditFields {
  ts: string;
  seq: number;
  prev_hash: string;
  hash: string;
}

const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

/**
 * One line of the log. `hash` is SHA-256 of the exact line without its hash field, and that line
 * contains `prev_hash`: each record covers its content and the one before. Verification hashes the
 * bytes as written, so it never depends on re-serializing JSON the same way.
 */
export function sealRecord(fields: AuditFields, seq: number, prevHash: string, ts = new Date().toISOString()): { line: string; hash: string } {
  const body = JSON.stringify({ ts, seq, ...fields, prev_hash: prevHash });
  const hash = sha256Hex(body);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

/** The line's hash when its content still matches it; undefined for an edited or unsealed line. */
export function verifySeal(line: string): string | undefined {
  const suffix = HASH_SUFFIX.exec(line);
  if (!suffix) return undefined;
  const body = `${line.slice(0, suffix.index)}}`;
  return sha256Hex(body) === suffix[1] ? suffix[1] : undefined;
}

/** Parses and checks one line against the chain so far; returns the problem, or the record. */
export function checkLine(line: string, expectedSeq: number, expectedPrev: string): { record: AuditRecord } | { problem: string } {
  if (verifySeal(line) === undefined) return { problem: 'content does not match its hash (edited, or not an audit record)' };
  let record: AuditRecord;
  try {
    record = JSON.parse(line) as AuditRecord;
  } catch {
    return { problem: 'not valid JSON' };
  }
  if (record.seq !== expectedSeq) return { problem: `seq ${record.seq} where ${expectedSeq} was expected (removed, inserted or reordered records)` };
  if (record.prev_hash !== expectedPrev) return { problem: 'prev_hash does not match the previous record (removed, inserted or reordered records)' };
  return { record };
}
