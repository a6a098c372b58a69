// npm run policy:data: writes policies/data.json (from gateway.yaml) and policies/tool_policy_test.rego
// (from policies/decisions.json), for OPA.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadGatewayConfig } from '../config/config.loader';
import { KIND_CONFIGS } from '../kinds';
import { buildOpaData, buildRegoTests, DecisionCase } from '../policy/opa-data';

if (existsSync('.env')) process.loadEnvFile('.env');
const config = loadGatewayConfig(process.env, { kinds: KIND_CONFIGS });
writeFileSync('policies/data.json', `${JSON.stringify(buildOpaData(config), null, 2)}\n`);
const { cases } = JSON.parse(readFileSync('policies/decisions.json', 'utf8')) as { cases: DecisionCase[] };
writeFileSync('policies/tool_policy_test.rego', buildRegoTests(cases));
process.stdout.write(`wrote policies/data.json (from ${config.source}) and policies/tool_policy_test.rego (${cases.length} cases)\n`);
