import { createHmac } from 'node:crypto';
import { sha256Hex } from '../core/hashing';

export const GENESIS_HASH = '0'.repeat(64);

export type AuditEvent = 'request' | 'decision' | 'outcome' | 'approval' | 'replay' | 'upstream_change' | 'config_reload';

/** What a caller records; the writer adds ts, seq, prev_hash and hash. */
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
  /** Hex SHA-256 of the exact arguments JSON (what ran, for an approval; the full value, when `arguments` was truncated). */
  arguments_sha256?: string;
  /** Set when `arguments` was cut to fit a record: it then holds the start of the redacted JSON, as a string. */
  arguments_truncated?: true;
  /** Size in bytes of the exact arguments JSON, when `arguments` was truncated. */
  arguments_bytes?: number;
  approval_id?: string;
  approver_id?: string;
  /** How the agent was proven, when not by the door's own credential: `oauth` (an access token of `issuer` about `subject`). */
  auth?: 'oauth';
  issuer?: string;
  subject?: string;
  /** The OAuth client that holds the token (its client_id, or azp). */
  client_id?: string;
  /** Delegation: the token's `act` claim, the party acting for `subject`. */
  act?: { sub: string };
  duration_ms?: number;
  client_ip?: string;
  /** The door a tool call came through: `rest` or `mcp`. */
  channel?: 'rest' | 'mcp';
  /** The MCP client's name/version, as it told us. */
  client?: string;
  /** upstream_change records: the upstream MCP tool, its pinned definition's SHA-256 and the one now listed. */
  upstream?: { server: string; tool: string; pinned_sha256: string; listed_sha256?: string };
  /**
   * config_reload records: what set it off (`signal`, `file`), what changed by section (ids, names,
   * token fingerprints; never values), and what keeps its running value until a restart.
   */
  config?: { trigger: string; changes: Record<string, { added?: string[]; removed?: string[]; changed?: string[] }>; restart_required?: string[] };
  method?: string;
  path?: string;
  /** The call's OpenTelemetry trace and span (hex), when tracing is on (OTEL_* variables). */
  trace_id?: string;
  span_id?: string;
}

export interface AuditRecord extends AuditFields {
  ts: string;
  seq: number;
  /** The instance whose chain holds the record (GATEWAY_INSTANCE_ID); absent in logs written before instances. */
  instance_id?: string;
  prev_hash: string;
  /** How `hash` was made; absent in logs written before keyed chains (then `sha256`). */
  seal?: SealKind;
  hash: string;
}

export type SealKind = 'hmac-sha256' | 'sha256';

/**
 * How records are sealed: HMAC-SHA256 under GATEWAY_AUDIT_KEY, which only the key's holder can
 * produce, or, with no key set, plain SHA-256, which proves the order of records but not who wrote them.
 */
export class AuditSeal {
  readonly kind: SealKind;

  constructor(private readonly key?: Buffer) {
    this.kind = key ? 'hmac-sha256' : 'sha256';
  }

  digest(body: string): string {
    return this.key ? createHmac('sha256', this.key).update(body).digest('hex') : sha256Hex(body);
  }
}

const UNKEYED = new AuditSeal();
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;
const KEYED_MARK = ',"seal":"hmac-sha256"';

/**
 * One line of the log. `hash` is the seal's digest of the exact line without its hash field, and
 * that line contains `prev_hash` and the seal's kind: each record covers its content and the one
 * before. Verification digests the bytes as written, so it never depends on re-serializing JSON the same way.
 */
export function sealRecord(
  fields: AuditFields & { instance_id?: string },
  seq: number,
  prevHash: string,
  seal = UNKEYED,
  ts = new Date().toISOString(),
): { line: string; hash: string } {
  const body = JSON.stringify({ ts, seq, ...fields, prev_hash: prevHash, seal: seal.kind });
  const hash = seal.digest(body);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

/** The line's hash when its content still matches it under `seal`; undefined for an edited, unsealed or differently sealed line. */
export function verifySeal(line: string, seal = UNKEYED): string | undefined {
  const suffix = HASH_SUFFIX.exec(line);
  if (!suffix) return undefined;
  const body = `${line.slice(0, suffix.index)}}`;
  return seal.digest(body) === suffix[1] ? suffix[1] : undefined;
}

/** Why `line` does not verify under `seal`, in words an operator can act on. */
export function sealProblem(line: string, seal: AuditSeal): string {
  const suffix = HASH_SUFFIX.exec(line);
  if (!suffix) return 'content does not match its hash (edited, or not an audit record)';
  const claimsKey = line.slice(0, suffix.index).endsWith(KEYED_MARK);
  if (seal.kind === 'hmac-sha256' && !claimsKey) {
    return 'sealed without the audit key (plain SHA-256): written before GATEWAY_AUDIT_KEY was set, or rewritten by someone who does not hold it';
  }
  if (seal.kind === 'sha256' && claimsKey) return 'sealed with an audit key (HMAC-SHA256): set GATEWAY_AUDIT_KEY to verify it';
  return seal.kind === 'hmac-sha256'
    ? 'content does not match its HMAC (edited, or sealed with a different GATEWAY_AUDIT_KEY)'
    : 'content does not match its hash (edited, or not an audit record)';
}

/** Parses and checks one line against the chain so far; returns the problem, or the record. */
export function checkLine(line: string, expectedSeq: number, expectedPrev: string, seal = UNKEYED): { record: AuditRecord } | { problem: string } {
  if (verifySeal(line, seal) === undefined) return { problem: sealProblem(line, seal) };
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
