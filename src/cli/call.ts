// npx agent-gateway call --agent <id> --tool <name> --args '<json>' [--url …] [--key-file …] [--request-id …]
//                        --agent <id> --list            (GET /api/tools)
//                        --agent <id> --get <path>      (any signed GET, e.g. /api/approvals/approv_…)
// (or `npm run -s call -- …`). Signs a request exactly as an agent must; the answer's JSON body goes to
// stdout alone (so it pipes to jq), `HTTP <status>` and every error to stderr; exit 1 on a 4xx/5xx.
import { randomUUID, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { signRequestHeaders, SigningKey } from '../auth/signature';
import { ConfigError, loadGatewayConfig } from '../config/config.loader';
import { KIND_CONFIGS } from '../kinds';

const USAGE = `usage: npx agent-gateway call --agent <id> (--tool <name> [--args '<json>'] | --list | --get <path>)
       [--url http://localhost:$PORT (default 8000), or GATEWAY_URL] [--key-file <ed25519 private key PEM>] [--request-id <id>] [--agent-version 1.0.0]`;

async function main(): Promise<number> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const { values } = parseCommandLine();
  if (!values.agent || (!values.tool && !values.list && !values.get)) {
    throw new UsageError('say which agent (--agent) and what to do (--tool, --list or --get)');
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
      arguments: parseJsonFlag('--args', values.args),
    });
  }
  // Signed as it goes on the wire: the URL parser percent-encodes what a path may not hold (a pasted `…`).
  const url = parseUrl(path, values.url);
  const signedPath = `${url.pathname}${url.search}`;
  const response = await fetch(url, {
    method,
    headers: { ...signRequestHeaders(agent.id, key, method, signedPath, body), ...(body && { 'Content-Type': 'application/json' }) },
    body: body || undefined,
  }).catch((err: Error) => {
    throw new Error(`could not reach ${url.href} (${networkReason(err)}); is the gateway running there? Set --url or GATEWAY_URL`);
  });
  const text = await response.text();
  let shown = text;
  try {
    shown = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // not JSON: print as received
  }
  process.stderr.write(`HTTP ${response.status}\n`);
  process.stdout.write(`${shown}\n`);
  return response.status >= 400 ? 1 : 0;
}

/** A mistake in the command line: said with the usage, exit code 2. */
class UsageError extends Error {}

function parseCommandLine() {
  try {
    return parseArgs({
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
  } catch (err) {
    // node:util's own words: "Unknown option '--tol'", "Option '--agent <value>' argument missing"…
    throw new UsageError((err as Error).message);
  }
}

function parseJsonFlag(flag: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${flag} is not valid JSON (${(err as Error).message}): ${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)}`);
  }
}

function parseUrl(path: string, base: string): URL {
  try {
    return new URL(path, base);
  } catch {
    throw new UsageError(`--url (or GATEWAY_URL) is not a URL: ${JSON.stringify(base)}`);
  }
}

/** fetch says only "fetch failed"; the reason (ECONNREFUSED 127.0.0.1:8000, ENOTFOUND host…) is in its cause. */
function networkReason(err: Error): string {
  const cause = err.cause as { code?: string; message?: string } | undefined;
  return cause?.message || cause?.code || err.message;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    if (err instanceof UsageError) {
      process.stderr.write(`call: ${err.message}\n${USAGE}\n`);
      process.exit(2);
    }
    process.stderr.write(`call: ${err instanceof ConfigError ? `config error: ${err.message}` : err.message}\n`);
    process.exit(1);
  },
);
