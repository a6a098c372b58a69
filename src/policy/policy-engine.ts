/** The input every engine decides on (what OPA gets as `input`). */
export interface PolicyInput {
  agent: { id: string; role: string; version: string };
  tool: string;
  arguments: Record<string, unknown>;
}

export interface PolicyDecision {
  allow: boolean;
  requires_approval: boolean;
  /** Why: `allowed`, or the deny reason (`tool_not_registered`, `forbidden_field`, …). */
  reason_code: string;
  /** Optional specifics for the caller, such as the path of a forbidden field. */
  details?: unknown[];
}

/**
 * Decides registration, agent version, role and forbidden fields (rows 7–10 of the order of checks, README) and whether the call needs approval.
 * Implementations: BuiltinPolicyEngine (the config's rules); an OPA client can be another.
 */
export abstract class PolicyEngine {
  abstract decide(input: PolicyInput): Promise<PolicyDecision>;

  /** Readiness: can this engine answer now? */
  async ready(): Promise<boolean> {
    return true;
  }
}
