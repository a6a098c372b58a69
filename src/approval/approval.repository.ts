export type ApprovalStatus = 'pending' | 'approved' | 'executed' | 'rejected' | 'expired' | 'failed';
export const APPROVAL_STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'executed', 'rejected', 'expired', 'failed'];

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
}

export type NewApproval = Omit<ApprovalRecord, 'status' | 'decided_by' | 'decided_at' | 'comment' | 'result' | 'error'>;

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

export interface Decision {
  approverId: string;
  approved: boolean;
  comment: string | null;
  now: number;
}

/**
 * Where approvals live. SQLite by default; a PostgreSQL implementation fills the same contract.
 * Every state change is a single conditional update, so concurrent callers cannot both win.
 */
export abstract class ApprovalRepository {
  /** Inserts unless the agent already holds `maxPending` unexpired pending approvals (then false). */
  abstract insertPending(record: NewApproval, maxPending: number): Promise<boolean>;
  abstract get(id: string): Promise<ApprovalRecord | undefined>;
  /** Newest first. A cursor this repository did not write: 400 invalid_query. */
  abstract list(query: ApprovalQuery): Promise<ApprovalPage>;
  /** pending and unexpired → approved | rejected; undefined when another state (or expiry) won. */
  abstract decide(id: string, decision: Decision): Promise<ApprovalRecord | undefined>;
  /** approved | rejected → pending again: nothing ran (the decision could not be recorded, or the policy engine could not be asked). */
  abstract undecide(id: string): Promise<void>;
  /** approved → executed | failed. */
  abstract complete(id: string, outcome: { result: unknown } | { error: StoredError }): Promise<void>;
  /** pending past expires_at → expired. */
  abstract expire(now: number): Promise<void>;
  /** Unexpired pending approvals (the metrics gauge). */
  abstract countPending(now: number): Promise<number>;
  /** executed | rejected | expired | failed, decided (or expired) before `before` → deleted. Returns how many. */
  abstract purge(before: number): Promise<number>;
  /** approved (decided, outcome never stored: the process died mid-execution) → failed. Returns how many. */
  abstract failInterrupted(): Promise<number>;
}
