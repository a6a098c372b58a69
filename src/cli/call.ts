// npm run call -- --agent <id> --tool <name> --args '<json>' [--url …] [--key-file …] [--request-id …]
//                 --agent <id> --list            (GET /api/tools)
//                 --agent <id> --get <path>      (any signed GET, e.g. /api/approvals/approv_…)
// Signs a request exactly as an agent must and prints the gateway's answer.
import { randomUUID, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { signRequestHeaders, SigningKey } from '../auth/signature';
import { ConfigError, loadGatewayConfig } from '../config/config.loader';
import { KIND_CONFIGS } from '../kinds';

const USAGE = `usage: npm run call -- --agent <id> (--tool <name> [--args '<json>'] | --list | --get <path>)
       [--url http://localhost:$PORT (default 8000), or GATEWAY_URL] [--key-file <ed25519 private key PEM>] [--request-id <id>] [--agent-version 1.0.0]`;

async function main(): Promise<number> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const { values } = parseArgs({
    options: {
      agent: { type: 'string' },
      tool: { type: 'string' },
      args: { type: 'string', default: '{}' },
      list: { type: 'boolean', default: false },
      get: { type: 'string' },
      url: { type: 'string', default: process.env.GATEWAY_URL || `http://localhost:${process.env.PORT || 8000}` },
      'key-file': { type: 'string' },
      'request-id': { type: 'string' },
      'agent-version': { type: 'string', default: '1.0.0' },
    },
  });
  if (!values.agent || (!values.tool && !values.list && !values.get)) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }

  const agent = loadGatewayConfig(process.env, { kinds: KIND_CONFIGS }).agents.get(values.agent);
  if (!agent) throw new Error(`agent "${values.agent}" is not in the config`);
  let key: SigningKey;
  if (agent.key.alg === 'hmac-sha256') key = { alg: 'hmac-sha256', secret: agent.key.secret };
  else if (values['key-file']) key = { alg: 'ed25519', privateKey: createPrivateKey(readFileSync(values['key-file'])) };
  else throw new Error(`agent "${agent.id}" signs with ed25519: pass --key-file <private key PEM>`);

  let method: string;
  let path: string;
  let body = '';
  if (values.list || values.get) {
    method = 'GET';
    path = values.get ?? '/api/tools';
  } else {
    method = 'POST';
    path = '/api/tools/call';
    body = JSON.stringify({
      agent_id: agent.id,
      agent_version: values['agent-version'],
      request_id: values['request-id'] ?? `req_${randomUUID()}`,
      tool: values.tool,
      arguments: JSON.parse(values.args),
    });
  }
  // Signed as it goes on the wire: the URL parser percent-encodes what a path may not hold (a pasted `…`).
  const url = new URL(path, values.url);
  const signedPath = `${url.pathname}${url.search}`;
  const response = await fetch(url, {
    method,
    headers: { ...signRequestHeaders(agent.id, key, method, signedPath, body), ...(body && { 'Content-Type': 'application/json' }) },
    body: body || undefined,
  }).catch((err: Error) => {
    throw new Error(`${url.origin} cannot be reached (${err.message}); is the gateway running there? (--url, GATEWAY_URL)`);
  });
  const text = await response.text();
  let shown = text;
  try {
    shown = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // not JSON: print as received
  }
  process.stdout.write(`HTTP ${response.status}\n${shown}\n`);
  return response.status >= 400 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`call: ${err instanceof ConfigError ? `config error: ${err.message}` : err.message}\n`);
    process.exit(1);
  },
);
