import type { GatewayError } from '../core/errors';
import type { Tool } from '../config/gateway-config';
import type { ApproverRequest, AuthenticatedCall } from './request-context';

/**
 * The values the tool-call stages hand each other (and the audit recorder): what each stage
 * established, never a flag set somewhere else.
 */

/** How a tool call is named in its records: by the door's envelope, or by the stored call an approver decides. */
export interface CallNames {
  request_id: string;
  agent_id: string;
  agent_version: string;
  role: string;
  tool: string;
}

export function namesOf(call: AuthenticatedCall): CallNames {
  return {
    request_id: call.envelope.request_id,
    agent_id: call.agent.id,
    agent_version: call.envelope.agent_version,
    role: call.agent.role,
    tool: call.envelope.tool,
  };
}

/** The policy stage let a registered tool's call go on: now (`allow`), or once a human approves (`pending`). */
export interface ToolAllowed {
  verdict: 'allow' | 'pending';
  tool: Tool;
}
/** A tool the gateway answers itself (MCP's approval_status), its arguments valid. */
export interface BuiltinAllowed {
  verdict: 'allow';
}
export type Allowed = ToolAllowed | BuiltinAllowed;
/** The policy stage refused the call (rows 7–12): its record is the `deny` decision. */
export interface Denied {
  verdict: 'deny';
  refusal: GatewayError;
}
/** What the policy stage established about a call. */
export type Decision = Allowed | Denied;

/** An approver's decision on a stored call, as its `approval` record shows it. */
export interface ApproverDecision {
  approvalId: string;
  approved: boolean;
  call: CallNames;
  /** Exactly the arguments that will run, and the SHA-256 of their JSON. */
  arguments: Record<string, unknown>;
  argumentsSha256: string;
}

/**
 * A call whose decision is on record — the policy's on a door's call, or an approver's on a stored
 * call — so its next record is its outcome. `mayHaveRun`: the tool was started or an approval
 * filed, so an outcome that cannot be recorded must not read "nothing was executed".
 */
export type DecidedCall =
  | { by: 'policy'; call: AuthenticatedCall; decision: Allowed; mayHaveRun: boolean }
  | { by: 'approver'; request: ApproverRequest; approval: ApproverDecision; mayHaveRun: boolean };
