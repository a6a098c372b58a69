/** The input every engine decides on (the OPA input of API.md §9). */
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
 * Decides rows 7–10 of API.md §4 and whether the call needs approval.
 * Implementations: BuiltinPolicyEngine (the config's rules); an OPA client can be another.
 */
export abstract class PolicyEngine {
  abstract decide(input: PolicyInput): Promise<PolicyDecision>;

  /** Readiness: can this engine answer now? */
  async ready(): Promise<boolean> {
    return true;
  }
}
