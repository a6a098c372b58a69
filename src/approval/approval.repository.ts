import { GatewayError, InvalidRequest } from '../core/errors';

/** `withdrawn`: the agent that asked took the request back (an MCP task it cancelled) before anyone decided. */
export type ApprovalStatus = 'pending' | 'approved' | 'executed' | 'rejected' | 'expired' | 'failed' | 'withdrawn';
export const APPROVAL_STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'executed', 'rejected', 'expired', 'failed', 'withdrawn'];

/** The error body stored for a call that was approved but did not execute. */
export interface StoredError {
  http_status: number;
  status: string;
  reason_code: string;
  error: string;
}

export interface ApprovalRecord {
  id: string;
  status: ApprovalStatus;
  agent_id: string;
  agent_version: string;
  role: string;
  tool: string;
  request_id: string;
  /** The verified envelope exactly as received, JSON. */
  envelope: string;
  envelope_sha256: string;
  audit_id: string;
  created_at: number;
  expires_at: number;
  decided_by: string | null;
  decided_at: number | null;
  comment: string | null;
  /** JSON of the tool's result, once executed. */
  result: string | null;
  /** JSON of a StoredError, once failed. */
  error: string | null;
  /** Approved: the instance (GATEWAY_INSTANCE_ID) that runs it, and since when (Unix ms); kept once settled. */
  claimed_by: string | null;
  claimed_at: number | null;
  /** Approved: past this (Unix ms) without an outcome, any instance marks it failed (see ClaimLease). */
  lease_until: number | null;
}

export type NewApproval = Omit<
  ApprovalRecord,
  'status' | 'decided_by' | 'decided_at' | 'comment' | 'result' | 'error' | 'claimed_by' | 'claimed_at' | 'lease_until'
>;

/** One page of a listing, newest first. */
export interface ApprovalQuery {
  status?: ApprovalStatus;
  /** Only approvals for these tools (an approver limited by approvers[].tools); undefined: every tool. */
  tools?: readonly string[];
  limit: number;
  /** The previous page's `nextCursor`: this page starts after it. */
  cursor?: string;
}

export interface ApprovalPage {
  records: ApprovalRecord[];
  /** Opaque; undefined when there is nothing after this page. */
  nextCursor?: string;
}

/** Where a page starts, in newest-first order: after (created_at, seq), seq being the store's insertion order. */
export interface PagePosition {
  created_at: number;
  seq: number;
}

const CURSOR = /^([0-9]{1,15})\.([0-9]{1,15})$/;
const FIRST_PAGE: PagePosition = { created_at: Number.MAX_SAFE_INTEGER, seq: Number.MAX_SAFE_INTEGER };

/** The position a cursor names (the first page without one); 400 invalid_query for anything else. */
export function pageStart(cursor: string | undefined): PagePosition {
  if (cursor === undefined) return FIRST_PAGE;
  const match = CURSOR.exec(cursor);
  if (!match) throw new InvalidRequest('invalid_query', 'cursor must be the next_cursor of a previous page');
  return { created_at: Number(match[1]), seq: Number(match[2]) };
}

function cursorAfter(last: PagePosition): string {
  return `${last.created_at}.${last.seq}`;
}

/**
 * A page of `limit` records from rows read newest first with one row more than asked, which tells
 * whether another page follows; `seq` (the store's insertion order) only serves the cursor.
 */
export function pageOf(rows: Array<ApprovalRecord & PagePosition>, limit: number): ApprovalPage {
  const last = rows.length > limit ? rows[limit - 1] : undefined;
  return { records: rows.slice(0, limit).map(({ seq: _seq, ...record }) => record), nextCursor: last && cursorAfter(last) };
}

export interface Decision {
  approverId: string;
  approved: boolean;
  comment: string | null;
  now: number;
  /** Approved: until when this instance's claim holds (see ClaimLease). */
  leaseUntil: number;
}

/**
 * How long an approved call may stay without an outcome before any instance marks it failed
 * (reason_code interrupted): the tool's timeout_ms, counted from the claim's renewal just before the
 * tool runs, plus a margin for writing the outcome and for clock skew between instances. The
 * executor never runs a tool longer than its timeout_ms, so past the lease the instance that claimed
 * the call has died (or lost the database), and the call is never run again.
 */
export const CLAIM_LEASE_MARGIN_MS = 15_000;
export function claimLeaseMs(timeoutMs: number): number {
  return timeoutMs + CLAIM_LEASE_MARGIN_MS;
}

/** The error stored for an approved call whose outcome was never stored. */
export const INTERRUPTED: StoredError = {
  http_status: 500,
  status: 'tool_error',
  reason_code: 'interrupted',
  error:
    'The gateway stopped after this call was approved and before its outcome was stored; it was not re-run. Check the workspace, then ask again if needed.',
};

/**
 * 409: the agent already filed an approval under this request_id. A request sent again is answered
 * from the replay store; this catches the one the store no longer knows (lost keys), so it never
 * files a second approval. Nothing new was filed.
 */
export class ApprovalAlreadyFiled extends GatewayError {
  constructor(readonly approvalId: string) {
    super(
      409,
      'conflict',
      'approval_already_filed',
      `An approval was already filed for this request_id (${approvalId}); nothing new was filed. Ask for that approval's state, or use a new request_id for a new call`,
    );
  }
}

/**
 * Where approvals live. SQLite by default; PostgreSQL (shared by instances) with GATEWAY_DATABASE_URL.
 * Every state change is a single conditional update, so concurrent callers cannot both win. Each
 * repository acts for one instance (GATEWAY_INSTANCE_ID): the approvals it claims carry its id.
 */
export abstract class ApprovalRepository {
  /**
   * Inserts unless the agent already holds `maxPending` unexpired pending approvals (then false).
   * An approval is unique per (agent_id, request_id): one already filed throws ApprovalAlreadyFiled.
   */
  abstract insertPending(record: NewApproval, maxPending: number): Promise<boolean>;
  abstract get(id: string): Promise<ApprovalRecord | undefined>;
  /** Newest first. A cursor this repository did not write: 400 invalid_query. */
  abstract list(query: ApprovalQuery): Promise<ApprovalPage>;
  /** pending and unexpired → approved (claimed by this instance) | rejected; undefined when another state (or expiry) won. */
  abstract decide(id: string, decision: Decision): Promise<ApprovalRecord | undefined>;
  /** Just before the tool runs: extends this instance's claim to `leaseUntil`; false when it no longer holds it (another instance failed it). */
  abstract renewClaim(id: string, leaseUntil: number): Promise<boolean>;
  /** pending and unexpired, asked by this agent → withdrawn (decided_at = now); undefined when another state (or expiry) won. */
  abstract withdraw(id: string, agentId: string, now: number): Promise<ApprovalRecord | undefined>;
  /** approved | rejected | withdrawn → pending again: nothing ran (the decision or withdrawal could not be recorded, or the policy engine could not be asked). */
  abstract undecide(id: string): Promise<void>;
  /** approved → executed | failed. */
  abstract complete(id: string, outcome: { result: unknown } | { error: StoredError }): Promise<void>;
  /** pending past expires_at → expired; approved past lease_until → failed (INTERRUPTED), whichever instance claimed it. */
  abstract expire(now: number): Promise<void>;
  /** Unexpired pending approvals (the metrics gauge). */
  abstract countPending(now: number): Promise<number>;
  /** executed | rejected | expired | failed | withdrawn, decided (or expired) before `before` → deleted. Returns how many. */
  abstract purge(before: number): Promise<number>;
  /** At start: approved by this instance (or by none: rows from before instances were recorded) → failed (INTERRUPTED); it died mid-execution. Returns how many. */
  abstract failInterrupted(): Promise<number>;
}
