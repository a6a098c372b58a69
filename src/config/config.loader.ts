import { createPublicKey, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Ajv, { ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { McpToolBinder, buildMcpServers, type RawMcpServer } from '../kinds/mcp/mcp-config';
import { MCP_LOCK_FILE } from '../kinds/mcp/mcp-lock';
import { ConfigError } from './config-error';
import { gatewayConfigSchema } from './config.schema';
import { canonicalHost, urlProblem } from './url-rules';
import {
  Agent,
  AgentKey,
  ApprovalWebhookSettings,
  Approver,
  GatewayConfig,
  normalizeFieldName,
  McpToken,
  RateLimit,
  RuntimePaths,
  SecretSource,
  Settings,
  SECRET_REFERENCE,
  Tool,
  ToolKind,
  URL_PLACEHOLDER,
} from './gateway-config';

// The CLIs and main.ts catch it from here, beside loadGatewayConfig.
export { ConfigError };

export const DEFAULT_CONFIG_PATH = 'policies/gateway.yaml';


type Env = Record<string, string | undefined>;

interface RawConfig {
  settings: Settings;
  roles: Record<string, { rate_limit?: RateLimit }>;
  agents: Array<{
    id: string;
    role: string;
    key: { alg: 'hmac-sha256'; secret: string } | { alg: 'ed25519'; public_key: string };
    rate_limit?: RateLimit;
    versions?: string[];
    mcp_tokens?: Array<{ token_sha256: string; agent_version?: string; expires_at?: string }>;
  }>;
  approvers: Array<{ id: string; token_sha256: string; tools?: string[]; audit: boolean }>;
  secrets: Record<string, SecretSource>;
  mcp_servers: Record<string, RawMcpServer>;
  tools: Record<
    string,
    Omit<Tool, 'name' | 'forbidden_fields' | 'validateArguments' | 'compileListingAllErrors' | 'description' | 'input_schema' | 'timeout_ms' | 'mcp'> & {
      description?: string;
      forbidden_fields?: string[];
      /** Absent only for mcp tools (then: the pinned upstream inputSchema). */
      input_schema?: Record<string, unknown>;
      /** Absent only for mcp tools (then: their server's). */
      timeout_ms?: number;
      server?: string;
      tool?: string;
    }
  >;
}

/** `mcpLock: 'skip'`: mcp tools are bound without their pins (npm run mcp:pin, which writes mcp-lock.json). */
export interface LoadOptions {
  mcpLock?: 'require' | 'skip';
}

const validateConfigShape = new Ajv({ useDefaults: true, discriminator: true, allErrors: false }).compile(
  gatewayConfigSchema,
);

/** Reads GATEWAY_CONFIG (default policies/gateway.yaml) and everything it needs from `env`. */
export function loadGatewayConfig(env: Env = process.env, options: LoadOptions = {}): GatewayConfig {
  const file = env.GATEWAY_CONFIG || DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '(file)', `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseGatewayConfig(text, file, env, options);
}

export function parseGatewayConfig(text: string, file: string, env: Env, options: LoadOptions = {}): GatewayConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const at = err.linePos ? `line ${err.linePos[0].line}` : '(yaml)';
      throw new ConfigError(file, at, err.message.split('\n')[0]);
    }
    throw err;
  }
  const defaulted: string[] = [];
  const raw = expandEnv(doc, '', env, file, defaulted);
  if (!validateConfigShape(raw)) {
    const error = validateConfigShape.errors![0];
    throw new ConfigError(file, describePath(error.instancePath), describeAjvError(error));
  }
  const demoCredentials = defaulted.filter((path) => CREDENTIAL_PATH.test(path));
  return buildConfig(raw as RawConfig, file, env, demoCredentials, options);
}

const CREDENTIAL_PATH = /\.(secret|public_key|token_sha256) \(/;

// `${env:NAME}` or `${env:NAME:-default}`; `${secret:NAME}` is left for the executor.
const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function expandEnv(value: unknown, path: string, env: Env, file: string, defaulted: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_match, name: string, fallback: string | undefined) => {
      const fromEnv = env[name];
      if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
      if (fallback !== undefined) {
        defaulted.push(`${path || '(root)'} (${name})`);
        return fallback;
      }
      throw new ConfigError(file, path || '(root)', `environment variable ${name} is not set`);
    });
  }
  if (Array.isArray(value)) {
    return value.map((item, i) => expandEnv(item, `${path}[${i}]`, env, file, defaulted));
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = expandEnv(item, path ? `${path}.${key}` : key, env, file, defaulted);
    }
    return out;
  }
  return value;
}

function buildConfig(raw: RawConfig, file: string, env: Env, demoCredentials: string[], options: LoadOptions): GatewayConfig {
  const fail = (path: string, problem: string): never => {
    throw new ConfigError(file, path, problem);
  };
  const roleExists = (role: string) => Object.prototype.hasOwnProperty.call(raw.roles, role);

  const agents = new Map<string, Agent>();
  raw.agents.forEach((a, i) => {
    if (agents.has(a.id)) fail(`agents[${i}].id`, `duplicate agent id "${a.id}"`);
    if (!roleExists(a.role)) fail(`agents[${i}].role`, `role "${a.role}" is not declared under roles`);
    agents.set(a.id, {
      id: a.id,
      role: a.role,
      key: buildKey(a.key, `agents[${i}].key`, fail),
      rate_limit: a.rate_limit,
      versions: a.versions,
      mcp_tokens: (a.mcp_tokens ?? []).map((t, j) => buildMcpToken(t, a.versions, `agents[${i}].mcp_tokens[${j}]`, fail)),
    });
  });
  const tokenHashes = [...agents.values()].flatMap((a) => a.mcp_tokens.map((t) => t.sha256.toString('hex')));
  if (new Set(tokenHashes).size !== tokenHashes.length) fail('agents[].mcp_tokens', 'the same token_sha256 is given more than once');

  const { idempotency_ttl_s, signature_tolerance_s } = raw.settings;
  if (idempotency_ttl_s < 2 * signature_tolerance_s) {
    // A signed request stays valid for ±tolerance; its request_id must be remembered at least that long.
    fail('settings.idempotency_ttl_s', `must be at least twice signature_tolerance_s (${2 * signature_tolerance_s})`);
  }
  if (raw.settings.approval_webhook) raw.settings.approval_webhook = approvalWebhook(raw.settings.approval_webhook, env, fail);

  // Normalised as every argument key is, so the two always compare alike; a name with nothing left would match junk keys.
  const forbiddenNames = (names: string[], path: string) =>
    names.map((name, i) => normalizeFieldName(name) || fail(`${path}[${i}]`, `"${name}" has no letter or digit`));
  const globalForbidden = forbiddenNames(raw.settings.forbidden_fields, 'settings.forbidden_fields');
  // Stops at the first error: a call's verdict costs the same however many errors its input holds.
  const toolAjv = operatorAjv(false);
  let listingAjv: Ajv | undefined;
  const mcpServers = buildMcpServers(raw.mcp_servers, raw.secrets, fail);
  const mcpTools = new McpToolBinder(file, mcpServers, options.mcpLock ?? 'require', fail);
  const tools = new Map<string, Tool>();
  for (const [name, t] of Object.entries(raw.tools)) {
    t.roles.forEach((role, i) => {
      if (!roleExists(role)) fail(`tools.${name}.roles[${i}]`, `role "${role}" is not declared under roles`);
    });
    // An mcp tool shows agents its pinned upstream definition, unless the config gives its own.
    const mcp = t.kind === 'mcp' ? mcpTools.bind(name, { server: t.server!, tool: t.tool! }) : undefined;
    const inputSchema = t.input_schema ?? mcp!.pinned.definition.inputSchema;
    const schemaPath = t.input_schema ? `tools.${name}.input_schema` : `tools.${name} (the inputSchema pinned in ${MCP_LOCK_FILE})`;
    if (inputSchema.type !== 'object') fail(schemaPath, 'must have type: object');
    let validateArguments;
    try {
      validateArguments = t.input_schema ? toolAjv.compile(inputSchema) : mcpTools.compile(inputSchema);
    } catch (err) {
      const problem = (err as Error).message.replace(/^strict mode: /, '').replace(/keyword: "/, 'keyword "');
      fail(schemaPath, problem);
    }
    if (t.kind === 'http') checkHttpTool(name, t as HttpToolConfig, raw.secrets, fail);
    tools.set(name, {
      name,
      kind: t.kind as ToolKind,
      description: t.description ?? mcp?.pinned.definition.description ?? '',
      roles: t.roles,
      requires_approval: t.requires_approval,
      input_schema: inputSchema,
      timeout_ms: t.timeout_ms ?? mcpTools.timeoutOf(t.server!),
      forbidden_fields: new Set([...globalForbidden, ...forbiddenNames(t.forbidden_fields ?? [], `tools.${name}.forbidden_fields`)]),
      rate_limit: t.rate_limit,
      ...(t.kind === 'http' && {
        request: (t as HttpToolConfig).request,
        allowed_hosts: (t as HttpToolConfig).allowed_hosts.map(canonicalHost),
        allow_private_networks: (t as HttpToolConfig).allow_private_networks,
      }),
      ...(mcp && { mcp }),
      validateArguments: validateArguments!,
      compileListingAllErrors: t.input_schema ? () => (listingAjv ??= operatorAjv(true)).compile(inputSchema) : () => mcpTools.compile(inputSchema, true),
    });
  }

  const approvers: Approver[] = raw.approvers.map((a, i) => {
    if (raw.approvers.findIndex((b) => b.id === a.id) !== i) fail(`approvers[${i}].id`, `duplicate approver id "${a.id}"`);
    a.tools?.forEach((tool, j) => {
      if (!tools.has(tool)) fail(`approvers[${i}].tools[${j}]`, `tool "${tool}" is not declared under tools`);
    });
    return { id: a.id, token_sha256: Buffer.from(a.token_sha256, 'hex'), tools: a.tools, audit: a.audit };
  });

  return new GatewayConfig({
    source: file,
    settings: raw.settings,
    roles: raw.roles,
    agents,
    approvers,
    secrets: raw.secrets,
    tools,
    mcpServers,
    paths: runtimePaths(env),
    redisUrl: env.GATEWAY_REDIS_URL || undefined,
    databaseUrl: databaseUrl(env, file),
    auditKey: auditKey(env, file),
    policy: policyEngine(env, file),
    demoCredentials,
  });
}

/** settings.approval_webhook: its host must be listed, as an http tool's (API.md §5). The URL itself is never echoed (it may hold a token). */
function approvalWebhook(
  w: Omit<ApprovalWebhookSettings, 'console_url'> & { console_url?: string },
  env: Env,
  fail: (p: string, m: string) => never,
): ApprovalWebhookSettings {
  const at = 'settings.approval_webhook';
  const allowed = w.allowed_hosts.map((host, i) => canonicalHost(host) || fail(`${at}.allowed_hosts[${i}]`, `"${host}" is not a host name or IP address`));
  const problem = urlProblem(w.url, allowed);
  if (problem) fail(`${at}.url`, problem);
  const consoleUrl = w.console_url ?? `http://localhost:${env.PORT || 8000}/console`;
  if (urlProblem(consoleUrl, undefined)) fail(`${at}.console_url`, 'must be an absolute http or https URL');
  return { url: w.url, allowed_hosts: allowed, console_url: consoleUrl };
}


/** How the operator's input_schemas compile: strict, so a typo in a schema is a config error. */
function operatorAjv(allErrors: boolean): Ajv {
  const ajv = new Ajv({ strict: true, allErrors });
  addFormats(ajv);
  return ajv;
}

type HttpToolConfig = Required<Pick<Tool, 'request' | 'allowed_hosts' | 'allow_private_networks' | 'input_schema'>>;

/** The URL template is an absolute http(s) URL whose placeholders are arguments; secrets are declared. */
function checkHttpTool(name: string, t: HttpToolConfig, secrets: Record<string, SecretSource>, fail: (p: string, m: string) => never): void {
  const at = `tools.${name}.request`;
  let url: URL;
  try {
    url = new URL(t.request.url.replace(URL_PLACEHOLDER, 'x'));
  } catch {
    return fail(`${at}.url`, 'not an absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`${at}.url`, 'must be http or https');
  const declared = (t.input_schema.properties ?? {}) as Record<string, unknown>;
  for (const [, arg] of t.request.url.matchAll(URL_PLACEHOLDER)) {
    if (!Object.prototype.hasOwnProperty.call(declared, arg)) fail(`${at}.url`, `placeholder {${arg}} is not a property of input_schema`);
  }
  for (const [header, value] of Object.entries(t.request.headers)) {
    for (const [, secret] of value.matchAll(SECRET_REFERENCE)) {
      if (!Object.prototype.hasOwnProperty.call(secrets, secret)) fail(`${at}.headers.${header}`, `secret "${secret}" is not declared under secrets`);
    }
  }
  t.allowed_hosts.forEach((host, i) => {
    if (canonicalHost(host) === '') fail(`tools.${name}.allowed_hosts[${i}]`, `"${host}" is not a host name or IP address`);
  });
}


function policyEngine(env: Env, file: string): GatewayConfig['policy'] {
  const engine = env.GATEWAY_POLICY_ENGINE || 'builtin';
  if (engine !== 'builtin' && engine !== 'opa') throw new ConfigError(file, '(environment) GATEWAY_POLICY_ENGINE', 'must be builtin or opa');
  const timeout = env.GATEWAY_OPA_TIMEOUT_MS || '500';
  if (!/^[0-9]{1,6}$/.test(timeout) || Number(timeout) < 1) throw new ConfigError(file, '(environment) GATEWAY_OPA_TIMEOUT_MS', 'must be a positive integer (milliseconds)');
  const opaUrl = (env.GATEWAY_OPA_URL || 'http://127.0.0.1:8181').replace(/\/+$/, '');
  try {
    new URL(opaUrl);
  } catch {
    throw new ConfigError(file, '(environment) GATEWAY_OPA_URL', 'not a URL');
  }
  return { engine, opaUrl, opaTimeoutMs: Number(timeout) };
}

/**
 * GATEWAY_AUDIT_KEY, read from the environment only so it is never stored beside the log. A short
 * key could be guessed offline from the log itself (its records and their HMACs).
 */
export function auditKey(env: Env, file: string): Buffer | undefined {
  const key = env.GATEWAY_AUDIT_KEY;
  if (!key) return undefined;
  if (key.length < 32) throw new ConfigError(file, '(environment) GATEWAY_AUDIT_KEY', 'must be at least 32 characters (for example: openssl rand -hex 32)');
  return Buffer.from(key, 'utf8');
}

/** GATEWAY_DATABASE_URL: PostgreSQL for approvals and audit, shared by instances (API.md §1). */
export function databaseUrl(env: Env, file: string): string | undefined {
  const url = env.GATEWAY_DATABASE_URL;
  if (!url) return undefined;
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError(file, '(environment) GATEWAY_DATABASE_URL', 'must be a postgres:// URL');
  return url;
}

/** API.md §12: a bearer token issued to one build of an agent. */
function buildMcpToken(
  t: { token_sha256: string; agent_version?: string; expires_at?: string },
  versions: string[] | undefined,
  path: string,
  fail: (path: string, problem: string) => never,
): McpToken {
  if (versions && t.agent_version === undefined) fail(`${path}.agent_version`, 'is required when the agent has versions');
  const expiresAt = t.expires_at === undefined ? undefined : Date.parse(t.expires_at);
  if (expiresAt !== undefined && Number.isNaN(expiresAt)) fail(`${path}.expires_at`, 'is not a date-time');
  return { sha256: Buffer.from(t.token_sha256, 'hex'), agent_version: t.agent_version ?? '0.0.0', expires_at: expiresAt };
}

/** Where state lives (API.md §1); needs no config file, so the CLI tools can use it alone. */
export function runtimePaths(env: Env): RuntimePaths {
  const dataDir = resolve(env.GATEWAY_DATA_DIR || './data');
  return {
    workspace: resolve(env.GATEWAY_WORKSPACE || './workspace'),
    dataDir,
    auditLog: resolve(env.GATEWAY_AUDIT_LOG || resolve(dataDir, 'audit.jsonl')),
  };
}

function buildKey(key: RawConfig['agents'][number]['key'], path: string, fail: (p: string, m: string) => never): AgentKey {
  if (key.alg === 'hmac-sha256') return { alg: key.alg, secret: Buffer.from(key.secret, 'utf8') };
  let publicKey: KeyObject;
  try {
    // PEM, or its base64 body alone (one line, convenient in an environment variable).
    publicKey = key.public_key.includes('-----BEGIN')
      ? createPublicKey(key.public_key)
      : createPublicKey({ key: Buffer.from(key.public_key, 'base64'), format: 'der', type: 'spki' });
  } catch {
    return fail(`${path}.public_key`, 'not a valid SPKI public key (PEM or base64 DER)');
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') fail(`${path}.public_key`, `expected an ed25519 key, got ${publicKey.asymmetricKeyType}`);
  return { alg: 'ed25519', publicKey };
}

function describePath(instancePath: string): string {
  if (!instancePath) return '(root)';
  return instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function describeAjvError(error: ErrorObject): string {
  const p = error.params as Record<string, unknown>;
  // A key refused by propertyNames (a tool name): say which, and why.
  if (error.propertyName !== undefined) return `name "${error.propertyName}" ${error.keyword === 'not' ? 'is reserved' : error.message}`;
  switch (error.keyword) {
    case 'additionalProperties':
      return `unknown field "${p.additionalProperty}"`;
    case 'required':
      return `missing required field "${p.missingProperty}"`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    case 'discriminator':
      return p.tagValue === undefined ? `"${p.tag}" must be a string` : `unsupported ${p.tag} ${JSON.stringify(p.tagValue)}`;
    default:
      return error.message ?? 'invalid';
  }
}
