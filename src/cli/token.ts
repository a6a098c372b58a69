// npm run token -- --agent <id> [--agent-version 1.0.0] [--expires 2027-06-30T00:00:00Z]
// Mints a bearer token for an agent's MCP door: prints the token once, and the line for
// agents[].mcp_tokens in gateway.yaml, which holds only its SHA-256.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { sha256Hex } from '../core/hashing';

const USAGE = 'usage: npm run token -- --agent <id> [--agent-version 1.0.0] [--expires <ISO-8601 date-time>]';

function main(): number {
  let values;
  try {
    ({ values } = parseArgs({ options: { agent: { type: 'string' }, 'agent-version': { type: 'string', default: '1.0.0' }, expires: { type: 'string' } } }));
  } catch {
    values = undefined;
  }
  if (!values?.agent || (values.expires !== undefined && Number.isNaN(Date.parse(values.expires)))) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const token = `agw_${randomBytes(32).toString('base64url')}`;
  const sha256 = sha256Hex(token);
  const expires = values.expires ? `, expires_at: "${new Date(values.expires).toISOString()}"` : '';
  process.stdout.write(
    [
      `MCP token for ${values.agent} (shown once; give it to the agent, e.g. as Authorization: Bearer <token>):`,
      '',
      `  ${token}`,
      '',
      `In gateway.yaml, add this line to the mcp_tokens list of agent ${values.agent} (if it has none, first add`,
      '"    mcp_tokens:" under the agent), then restart the gateway:',
      '',
      `      - { token_sha256: "${sha256}", agent_version: "${values['agent-version']}"${expires} }`,
      '',
    ].join('\n'),
  );
  return 0;
}

process.exitCode = main();
