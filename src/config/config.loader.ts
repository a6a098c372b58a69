import { createPublicKey, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Ajv, { ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { YAMLParseError } from 'yaml';
import { ConfigError } from './config-error';
import { gatewayConfigSchema } from './config.schema';
import type { KindLoadContext, RawToolEntry, ToolKindConfig } from './tool-kind-config';
import { canonicalHost, urlProblem } from './url-rules';
import { parseYamlUniqueKeys } from './yaml-unique';
import {
  AgentKey,
  ApprovalWebhookSettings,
  Approver,
  AuditSinkConfig,
  ConfiguredAgent,
  GatewayConfig,
  normalizeFieldName,
  McpToken,
  OAuthSettings,
  RateLimit,
  RuntimePaths,
  SECRET_REFERENCE,
  SecretSource,
  Settings,
  Tool,
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
    oauth_clients?: string[];
  }>;
  oauth?: OAuthSettings;
  approvers: Array<{ id: string; token_sha256: string; tools?: string[]; audit: boolean }>;
  secrets: Record<string, SecretSource>;
  tools: Record<string, RawToolEntry>;
  audit_sinks: AuditSinkConfig[];
}

/** `kinds`: the tool kinds a config may use (the list registered in src/kinds). */
export interface LoadOptions {
  kinds: readonly ToolKindConfig[];
}

// Compiled once per list of kinds (the process has one; the mcp:pin CLI a second).
const shapeValidators = new WeakMap<readonly ToolKindConfig[], ValidateFunction>();

function shapeValidator(kinds: readonly ToolKindConfig[]): ValidateFunction {
  let validate = shapeValidators.get(kinds);
  if (!validate) {
    // The schema is the gateway's own (its tests check it against the meta-schema) and runs once per load:
    // neither checking it again nor optimizing its code pays at start-up (about half the compile time).
    validate = new Ajv({ useDefaults: true, discriminator: true, allErrors: false, validateSchema: false, code: { optimize: false } }).compile(
      gatewayConfigSchema(kinds),
    );
    shapeValidators.set(kinds, validate);
  }
  return validate;
}

/** Reads GATEWAY_CONFIG (default policies/gateway.yaml) and everything it needs from `env`. */
export function loadGatewayConfig(env: Env, options: LoadOptions): GatewayConfig {
  const file = env.GATEWAY_CONFIG || DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '(file)', `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseGatewayConfig(text, file, env, options);
}

export function parseGatewayConfig(text: string, file: string, env: Env, options: LoadOptions): GatewayConfig {
  let doc: unknown;
  try {
    doc = parseYamlUniqueKeys(text, 100);
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const at = err.linePos ? `line ${err.linePos[0].line}` : '(yaml)';
      throw new ConfigError(file, at, err.message.split('\n')[0]);
    }
    throw err;
  }
  const defaulted: string[] = [];
  const raw = expandEnv(doc, [], env, file, defaulted);
  const validateConfigShape = shapeValidator(options.kinds);
  if (!validateConfigShape(raw)) {
    const error = validateConfigShape.errors![0];
    throw new ConfigError(file, describePath(error.instancePath), describeAjvError(error));
  }
  const demoCredentials = defaulted.filter((path) => CREDENTIAL_PATH.test(path));
  return buildConfig(raw as RawConfig, file, env, demoCredentials, options.kinds);
}

const CREDENTIAL_PATH = /\.(secret|public_key|token_sha256) \(/;

// `${env:NAME}` or `${env:NAME:-default}`; `${secret:NAME}` is left for the executor.
const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * A copy of the document with `${env:…}` references replaced. `at` is the path to `value`, kept as
 * a stack and written out only for an error or a default (a 10,000-tool file has ~150,000 values).
 */
function expandEnv(value: unknown, at: Array<string | number>, env: Env, file: string, defaulted: string[]): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${env:')) return value;
    return value.replace(ENV_REF, (_match, name: string, fallback: string | undefined) => {
      const fromEnv = env[name];
      if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
      if (fallback !== undefined) {
        defaulted.push(`${pathOf(at)} (${name})`);
        return fallback;
      }
      throw new ConfigError(file, pathOf(at), `environment variable ${name} is not set`);
    });
  }
  if (Array.isArray(value)) {
    return value.map((item, i) => {
      at.push(i);
      const out = expandEnv(item, at, env, file, defaulted);
      at.pop();
      return out;
    });
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      at.push(key);
      const copy = expandEnv(item, at, env, file, defaulted);
      // A `__proto__` key stays a key (then refused as unknown), never the copy's prototype.
      if (key === '__proto__') Object.defineProperty(out, key, { value: copy, enumerable: true, writable: true, configurable: true });
      else out[key] = copy;
      at.pop();
    }
    return out;
  }
  return value;
}

/** `agents[0].key.secret`; `(root)` for the document itself. */
function pathOf(at: ReadonlyArray<string | number>): string {
  return at.reduce<string>((path, part) => (typeof part === 'number' ? `${path}[${part}]` : path ? `${path}.${part}` : part), '') || '(root)';
}

function buildConfig(raw: RawConfig, file: string, env: Env, demoCredentials: string[], kinds: readonly ToolKindConfig[]): GatewayConfig {
  const fail = (path: string, problem: string): never => {
    throw new ConfigError(file, path, problem);
  };
  const roleExists = (role: string) => Object.prototype.hasOwnProperty.call(raw.roles, role);

  const agents = new Map<string, ConfiguredAgent>();
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
      oauth_clients: oauthClients(a, i, raw.oauth !== undefined, fail),
    });
  });
  const clientIds = [...agents.values()].flatMap((a) => a.oauth_clients);
  if (new Set(clientIds).size !== clientIds.length) fail('agents[].oauth_clients', 'the same client id is given to more than one agent');
  const oauth = raw.oauth && oauthSettings(raw.oauth, raw.secrets, fail);
  if (oauth && oauth.issuers.length > 1) {
    for (const [id, agent] of agents) {
      agent.oauth_clients.forEach((client, j) => {
        if (!oauth.issuers.some((i) => client.startsWith(`${i.issuer}#`))) {
          fail(`agents[${id}].oauth_clients[${j}]`, `with several issuers, name the issuer: "<issuer>#${client}"`);
        }
      });
    }
  }
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
  // Tools whose input_schema is the same share one compiled validator (most of a large config's do).
  const compileTool = sharedCompiler(() => operatorAjv(false));
  const compileListing = sharedCompiler(() => operatorAjv(true));
  // Each kind reads its own sections once (mcp_servers and the pins beside the config), then parses its tools.
  const ctx: KindLoadContext = { file, secrets: raw.secrets, fail };
  const prepared = new Map(kinds.map((kind) => [kind, kind.prepare?.(raw as unknown as Record<string, unknown>, ctx)]));
  const kindOf = new Map(kinds.flatMap((kind) => kind.kinds.map((name) => [name, kind] as const)));
  const tools = new Map<string, Tool>();
  for (const [name, t] of Object.entries(raw.tools)) {
    t.roles.forEach((role, i) => {
      if (!roleExists(role)) fail(`tools.${name}.roles[${i}]`, `role "${role}" is not declared under roles`);
    });
    // The schema admits only the kinds given.
    const kind = kindOf.get(t.kind)!;
    const { fields, defaults } = kind.parse(name, t, ctx, prepared.get(kind));
    // A kind may fill in the input schema (an mcp tool shows agents its pinned upstream definition), unless the config gives its own.
    const foreign = t.input_schema ? undefined : defaults?.input_schema;
    const inputSchema = t.input_schema ?? foreign?.schema ?? fail(`tools.${name}`, 'missing required field "input_schema"');
    const schemaPath = foreign ? `tools.${name} ${foreign.source}` : `tools.${name}.input_schema`;
    if (inputSchema.type !== 'object') fail(schemaPath, 'must have type: object');
    let validateArguments;
    try {
      validateArguments = foreign ? foreign.compile(inputSchema, false) : compileTool(inputSchema);
    } catch (err) {
      const problem = (err as Error).message.replace(/^strict mode: /, '').replace(/keyword: "/, 'keyword "');
      fail(schemaPath, problem);
    }
    tools.set(name, {
      name,
      kind: t.kind,
      description: t.description ?? defaults?.description ?? '',
      roles: t.roles,
      requires_approval: t.requires_approval,
      input_schema: inputSchema,
      timeout_ms: t.timeout_ms ?? defaults?.timeout_ms ?? fail(`tools.${name}`, 'missing required field "timeout_ms"'),
      forbidden_fields: new Set([...globalForbidden, ...forbiddenNames(t.forbidden_fields ?? [], `tools.${name}.forbidden_fields`)]),
      rate_limit: t.rate_limit,
      ...fields,
      validateArguments: validateArguments,
      compileListingAllErrors: foreign ? () => foreign.compile(inputSchema, true) : () => compileListing(inputSchema),
    } as Tool);
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
    oauth,
    tools,
    auditSinks: auditSinks(raw.audit_sinks, raw.secrets, fail),
    sections: Object.fromEntries(kinds.filter((kind) => kind.prepare !== undefined).map((kind) => [kind.name, prepared.get(kind)])),
    paths: runtimePaths(env),
    redisUrl: env.GATEWAY_REDIS_URL || undefined,
    databaseUrl: databaseUrl(env, file),
    auditKey: auditKey(env, file),
    policy: policyEngine(env, file),
    demoCredentials,
  });
}

/** settings.approval_webhook: its host must be listed, as an http tool's allowed_hosts. The URL itself is never echoed (it may hold a token). */
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

/** audit_sinks: names unique; a URL on its allowed hosts (as an http tool's); a header's ${secret:NAME} declared under secrets. */
function auditSinks(sinks: AuditSinkConfig[], secrets: Record<string, SecretSource>, fail: (p: string, m: string) => never): AuditSinkConfig[] {
  return sinks.map((sink, i) => {
    const at = `audit_sinks[${i}]`;
    if (sinks.findIndex((other) => other.name === sink.name) !== i) fail(`${at}.name`, `duplicate sink name "${sink.name}"`);
    if (sink.type === 'syslog') return sink;
    const allowed = sink.allowed_hosts.map((host, j) => canonicalHost(host) || fail(`${at}.allowed_hosts[${j}]`, `"${host}" is not a host name or IP address`));
    const problem = urlProblem(sink.url, allowed);
    if (problem) fail(`${at}.url`, problem);
    for (const [header, value] of Object.entries(sink.headers)) {
      for (const [, secret] of value.matchAll(SECRET_REFERENCE)) {
        if (!Object.prototype.hasOwnProperty.call(secrets, secret)) fail(`${at}.headers.${header}`, `secret "${secret}" is not declared under secrets`);
      }
    }
    return { ...sink, allowed_hosts: allowed };
  });
}

/** agents[].oauth_clients: only beside an `oauth:` section, and not for an agent whose builds are pinned (a token names no build). */
function oauthClients(a: RawConfig['agents'][number], i: number, oauthOn: boolean, fail: (p: string, m: string) => never): string[] {
  const clients = a.oauth_clients ?? [];
  if (clients.length === 0) return clients;
  if (!oauthOn) fail(`agents[${i}].oauth_clients`, 'needs an oauth: section naming the issuers');
  if (a.versions) fail(`agents[${i}].oauth_clients`, 'cannot be given to an agent with versions (an OAuth token names no agent build; use mcp_tokens)');
  return clients;
}

/** The `oauth:` section: the resource an absolute http(s) URL; each issuer's URL on one of its allowed hosts, named once. */
function oauthSettings(o: OAuthSettings, secrets: Record<string, SecretSource>, fail: (p: string, m: string) => never): OAuthSettings {
  const resourceProblem = urlProblem(o.resource, undefined);
  if (resourceProblem) fail('oauth.resource', resourceProblem);
  if (new URL(o.resource).hash || o.resource.includes('#')) fail('oauth.resource', 'must not hold a fragment');
  const issuers = o.issuers.map((issuer, i) => {
    const at = `oauth.issuers[${i}]`;
    if (o.issuers.findIndex((other) => other.issuer === issuer.issuer) !== i) fail(`${at}.issuer`, `duplicate issuer "${issuer.issuer}"`);
    const allowed = issuer.allowed_hosts.map(
      (host, j) => canonicalHost(host) || fail(`${at}.allowed_hosts[${j}]`, `"${host}" is not a host name or IP address`),
    );
    const problem = urlProblem(issuer.issuer, allowed);
    if (problem) fail(`${at}.issuer`, problem);
    if (!isHttpsOrLoopback(new URL(issuer.issuer)))
      fail(`${at}.issuer`, 'must be https (plain http only on a loopback address): its key set is fetched from it');
    const secret = issuer.introspection && /^\$\{secret:(.+)\}$/.exec(issuer.introspection.client_secret)![1];
    if (secret && !Object.prototype.hasOwnProperty.call(secrets, secret))
      fail(`${at}.introspection.client_secret`, `secret "${secret}" is not declared under secrets`);
    // An opaque token does not say whose it is: it is shown to one issuer only.
    if (issuer.introspection && o.issuers.findIndex((other) => other.introspection) !== i)
      fail(`${at}.introspection`, 'only one issuer may introspect opaque tokens');
    return { ...issuer, allowed_hosts: allowed };
  });
  return { resource: o.resource, issuers };
}

/** An issuer's keys decide who may act: fetched over TLS, except from this machine. */
export function isHttpsOrLoopback(url: URL): boolean {
  return url.protocol === 'https:' || ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
}

/** How the operator's input_schemas compile: strict, so a typo in a schema is a config error. */
function operatorAjv(allErrors: boolean): Ajv {
  const ajv = new Ajv({ strict: true, allErrors });
  addFormats(ajv);
  return ajv;
}

/**
 * Compiles each distinct schema once (keyed by its JSON; ajv's own cache is keyed by the object),
 * with the ajv `create` makes on first use. Every schema is still compiled, in strict mode, while
 * the config loads. Sharing a validator is safe: it changes nothing in the data, and its `errors`
 * are read right after it runs, in the same turn.
 */
function sharedCompiler(create: () => Ajv): (schema: Record<string, unknown>) => ValidateFunction {
  let ajv: Ajv | undefined;
  const compiled = new Map<string, ValidateFunction>();
  return (schema) => {
    const key = JSON.stringify(schema);
    let validate = compiled.get(key);
    if (!validate) {
      validate = (ajv ??= create()).compile(schema);
      compiled.set(key, validate);
    }
    return validate;
  };
}

function policyEngine(env: Env, file: string): GatewayConfig['policy'] {
  const engine = env.GATEWAY_POLICY_ENGINE || 'builtin';
  if (engine !== 'builtin' && engine !== 'opa') throw new ConfigError(file, '(environment) GATEWAY_POLICY_ENGINE', 'must be builtin or opa');
  const timeout = env.GATEWAY_OPA_TIMEOUT_MS || '500';
  if (!/^[0-9]{1,6}$/.test(timeout) || Number(timeout) < 1)
    throw new ConfigError(file, '(environment) GATEWAY_OPA_TIMEOUT_MS', 'must be a positive integer (milliseconds)');
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

/** GATEWAY_DATABASE_URL: PostgreSQL for approvals and audit, shared by instances. */
export function databaseUrl(env: Env, file: string): string | undefined {
  const url = env.GATEWAY_DATABASE_URL;
  if (!url) return undefined;
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError(file, '(environment) GATEWAY_DATABASE_URL', 'must be a postgres:// URL');
  return url;
}

/** agents[].mcp_tokens[]: a bearer token for the MCP door, issued to one build of an agent. */
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

/** Where state lives (GATEWAY_DATA_DIR, GATEWAY_WORKSPACE, GATEWAY_AUDIT_LOG); needs no config file, so the CLI tools can use it alone. */
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
