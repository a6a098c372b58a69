import { Injectable } from '@nestjs/common';
import { GatewayConfig, normalizeFieldName } from '../config/gateway-config';
import { findKey } from '../core/json-walk';
import { PolicyDecision, PolicyEngine, PolicyInput } from './policy-engine';

const deny = (reason_code: string, details?: unknown[]): PolicyDecision => ({ allow: false, requires_approval: false, reason_code, details });

/** The policy of gateway.yaml, in order: registered, agent version, role, forbidden fields. */
@Injectable()
export class BuiltinPolicyEngine extends PolicyEngine {
  constructor(private readonly config: GatewayConfig) {
    super();
  }

  async decide(input: PolicyInput): Promise<PolicyDecision> {
    const tool = this.config.tools.get(input.tool);
    if (!tool) return deny('tool_not_registered');

    const versions = this.config.agents.get(input.agent.id)?.versions;
    if (versions && !versions.some((pattern) => versionMatches(pattern, input.agent.version))) {
      return deny('agent_version_not_allowed');
    }
    if (!tool.roles.includes(input.agent.role)) return deny('tool_not_allowed_for_role');

    const forbidden = findKey(input.arguments, (key) => tool.forbidden_fields.has(normalizeFieldName(key)));
    if (forbidden !== undefined) return deny('forbidden_field', [{ path: `arguments.${forbidden}` }]);

    return { allow: true, requires_approval: tool.requires_approval, reason_code: 'allowed' };
  }
}

/** `1.x` / `1.2.*` match any version below that prefix; anything else must match exactly. */
export function versionMatches(pattern: string, version: string): boolean {
  const wanted = pattern.split('.');
  const actual = version.split('.');
  for (let i = 0; i < wanted.length; i++) {
    if (wanted[i] === 'x' || wanted[i] === 'X' || wanted[i] === '*') return actual.length > i;
    if (wanted[i] !== actual[i]) return false;
  }
  return wanted.length === actual.length;
}
