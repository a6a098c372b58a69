import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadGatewayConfig } from '../config/config.loader';
import { KIND_CONFIGS } from '../kinds';
import { BuiltinPolicyEngine } from './builtin-policy.engine';
import { buildOpaData, buildRegoTests, DecisionCase } from './opa-data';

const policies = join(__dirname, '../../policies');
const config = loadGatewayConfig({ GATEWAY_CONFIG: join(policies, 'gateway.yaml') }, { kinds: KIND_CONFIGS });
const { cases } = JSON.parse(readFileSync(join(policies, 'decisions.json'), 'utf8')) as { cases: DecisionCase[] };

describe('the shared decision table (policies/decisions.json)', () => {
  const engine = new BuiltinPolicyEngine(config);

  it.each(cases.map((c) => [c.name, c] as const))('builtin engine: %s', async (_name, c) => {
    const { allow, requires_approval, reason_code } = await engine.decide(c.input);
    expect({ allow, requires_approval, reason_code }).toEqual(c.expected);
  });

  it('covers every deny reason and both approval outcomes', () => {
    const reasons = new Set(cases.map((c) => c.expected.reason_code));
    expect([...reasons].sort()).toEqual(['agent_version_not_allowed', 'allowed', 'forbidden_field', 'tool_not_allowed_for_role', 'tool_not_registered']);
    expect(cases.some((c) => c.expected.requires_approval)).toBe(true);
  });

  it('policies/data.json is what `npm run policy:data` writes from the demo gateway.yaml (not stale)', () => {
    expect(JSON.parse(readFileSync(join(policies, 'data.json'), 'utf8'))).toEqual(buildOpaData(config));
  });

  it('policies/tool_policy_test.rego mirrors the table case for case (not stale)', () => {
    expect(readFileSync(join(policies, 'tool_policy_test.rego'), 'utf8')).toBe(buildRegoTests(cases));
  });
});
