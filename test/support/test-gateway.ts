import { createHash, generateKeyPairSync, KeyObject } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Test } from '@nestjs/testing';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { __resetOutOfContextForTests } from 'nestjs-pino/PinoLogger';
import request from 'supertest';
import { AppModule } from '../../src/app.module';
import { configureApp, createHttpAdapter } from '../../src/app.setup';
import { signRequestHeaders, SigningKey } from '../../src/auth/signature';
import { loadGatewayConfig } from '../../src/config/config.loader';
import { InstanceId } from '../../src/config/instance-id';
import { KIND_CONFIGS } from '../../src/kinds';
import { configureHttpServer, httpServerLimits, HttpServerLimits } from '../../src/http-server';

export const HMAC_AGENT = 'agent_deploy_test';
export const HMAC_SECRET = 'test-deploy-secret-0123456789';
export const ED_AGENT = 'agent_reader_test';
export const ADMIN_TOKEN = 'admin-test-token';
export const WRITER_TOKEN = 'writer-only-test-token';
/** MCP bearer tokens: the HMAC agent's (version 1.0.0), the Ed25519 agent's (1.4.0), an expired one. */
export const MCP_DEPLOY_TOKEN = 'mcp-deploy-test-token';
export const MCP_READER_TOKEN = 'mcp-reader-test-token';
export const MCP_EXPIRED_TOKEN = 'mcp-expired-test-token';
export const AUDIT_KEY = 'test-audit-key-0123456789abcdef0123456789';

export interface TestGatewayOptions {
  approvalTtlS?: number;
  /** settings.approval_retention_s (default: the schema's). */
  approvalRetentionS?: number;
  /** settings.mcp: how long a tools/call waits for a human, and the allowed browser origins. */
  mcp?: { approvalWaitS?: number; allowedOrigins?: string[] };
  maxPending?: number;
  /** GATEWAY_AUDIT_LOG; default `<data dir>/audit.jsonl`. */
  auditLog?: string;
  /** Capture the app's log lines (at info) in `logLines` instead of silencing them. */
  captureLogs?: boolean;
  auditFsync?: boolean;
  /** GATEWAY_REDIS_URL: counters and idempotency keys in Redis instead of memory. */
  redisUrl?: string;
  /** GATEWAY_DATABASE_URL: approvals (and the audit log) in this PostgreSQL database, shared with other gateways. */
  databaseUrl?: string;
  /** GATEWAY_INSTANCE_ID (default: host + a suffix kept in this gateway's data dir). */
  instanceId?: string;
  /** A workspace directory shared with other gateways (created if missing, never removed by stop()); default: one of its own. */
  workspace?: string;
  /** unauthenticated_rate_limit (default: high enough not to interfere). */
  ipLimit?: { limit: number; ttl_s: number };
  /** rate_limit of the HMAC agent, and of the `limited_read` tool. */
  agentLimit?: { limit: number; ttl_s: number };
  toolLimit?: { limit: number; ttl_s: number };
  /** YAML lines added under `tools:` and under `secrets:` (indented by two spaces). */
  extraTools?: string;
  secrets?: string;
  /** GATEWAY_POLICY_ENGINE=opa with this OPA URL and timeout. */
  opa?: { url: string; timeoutMs?: number };
  /** GATEWAY_AUDIT_KEY (default AUDIT_KEY); null: no key, the chain is sealed with plain SHA-256. */
  auditKey?: string | null;
  /** settings.max_body_bytes (default 65536). */
  maxBodyBytes?: number;
  /** HTTP server limits instead of the defaults (GATEWAY_HEADERS_TIMEOUT_MS…). */
  httpLimits?: Partial<HttpServerLimits>;
  /** YAML lines under `mcp_servers:` (indented by two spaces), and settings.mcp_resync_s. */
  mcpServers?: string;
  mcpResyncS?: number;
  /** Runs once the config file is written, before the first boot (to pin mcp tools, say). */
  beforeBoot?: (gw: TestGateway) => unknown;
  /** settings.approval_webhook. */
  approvalWebhook?: { url: string; allowedHosts: string[]; consoleUrl?: string };
}

/** A gateway on a temp data dir and workspace, with the test config below, over real HTTP. */
export class TestGateway {
  readonly root = mkdtempSync(join(tmpdir(), 'agent-gateway-'));
  readonly workspace: string;
  readonly dataDir = join(this.root, 'data');
  readonly edKeys = generateKeyPairSync('ed25519');
  readonly configFile = join(this.root, 'gateway.yaml');
  readonly logLines: string[] = [];
  app!: NestExpressApplication;

  constructor(private readonly options: TestGatewayOptions = {}) {
    this.workspace = options.workspace ?? join(this.root, 'workspace');
  }

  async start(): Promise<this> {
    mkdirSync(this.workspace, { recursive: true });
    writeFileSync(this.configFile, testConfig(this.edKeys.publicKey, this.options));
    await this.options.beforeBoot?.(this);
    await this.boot();
    return this;
  }

  /** Closes the app and starts a new one on the same config, data dir and workspace (with `env` options changed). */
  async restart(env: Pick<TestGatewayOptions, 'auditKey'> = {}): Promise<void> {
    await this.app.close();
    Object.assign(this.options, env);
    await this.boot();
  }

  get auditFile(): string {
    return this.options.auditLog ?? join(this.dataDir, 'audit.jsonl');
  }

  /** The audit records as written, parsed. */
  auditRecords(): Array<Record<string, unknown>> {
    return readFileSync(this.auditFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));
  }

  private async boot(): Promise<void> {
    process.env.LOG_LEVEL = this.options.captureLogs ? 'info' : 'silent';
    const config = loadGatewayConfig(
      {
        GATEWAY_CONFIG: this.configFile,
        GATEWAY_WORKSPACE: this.workspace,
        GATEWAY_DATA_DIR: this.dataDir,
        GATEWAY_AUDIT_LOG: this.auditFile,
        GATEWAY_REDIS_URL: this.options.redisUrl,
        GATEWAY_DATABASE_URL: this.options.databaseUrl,
        GATEWAY_POLICY_ENGINE: this.options.opa ? 'opa' : undefined,
        GATEWAY_OPA_URL: this.options.opa?.url,
        GATEWAY_OPA_TIMEOUT_MS: this.options.opa?.timeoutMs?.toString(),
        TEST_DEPLOY_KEY: HMAC_SECRET,
        GATEWAY_AUDIT_KEY: this.options.auditKey === undefined ? AUDIT_KEY : (this.options.auditKey ?? undefined),
      },
      { kinds: KIND_CONFIGS },
    );
    const logDestination = this.options.captureLogs ? { write: (line: string) => void this.logLines.push(line) } : undefined;
    // nestjs-pino keeps the first app's logger for lines outside a request (start-up): use this app's.
    __resetOutOfContextForTests();
    const testing = Test.createTestingModule({ imports: [AppModule.forRoot(config, { logDestination })] });
    if (this.options.instanceId) testing.overrideProvider(InstanceId).useValue(new InstanceId(this.options.instanceId));
    const moduleRef = await testing.compile();
    this.app = moduleRef.createNestApplication<NestExpressApplication>(createHttpAdapter(), { rawBody: true, bodyParser: false });
    configureApp(this.app, config);
    configureHttpServer(this.app.getHttpServer(), { ...httpServerLimits({}), ...this.options.httpLimits });
    await this.app.init();
  }

  async stop(): Promise<void> {
    await this.app?.close();
    rmSync(this.root, { recursive: true, force: true });
  }

  http() {
    return request(this.app.getHttpServer());
  }

  keyOf(agentId: string): SigningKey {
    return agentId === ED_AGENT ? { alg: 'ed25519', privateKey: this.edKeys.privateKey } : { alg: 'hmac-sha256', secret: HMAC_SECRET };
  }

  /** POST /api/tools/call, signed as `agentId` would sign it. */
  call(tool: string, args: unknown, opts: { agent?: string; version?: string; requestId?: string } = {}) {
    const agent = opts.agent ?? HMAC_AGENT;
    return this.post('/api/tools/call', envelope(agent, tool, args, opts), agent);
  }

  post(path: string, body: unknown, agent = HMAC_AGENT, headers: Record<string, string> = {}) {
    const raw = typeof body === 'string' ? body : JSON.stringify(body);
    return this.http()
      .post(path)
      .set({ 'Content-Type': 'application/json', ...signRequestHeaders(agent, this.keyOf(agent), 'POST', path, raw), ...headers })
      .send(raw);
  }

  get(path: string, agent = HMAC_AGENT) {
    return this.http()
      .get(path)
      .set(signRequestHeaders(agent, this.keyOf(agent), 'GET', path, ''));
  }

  /** A request as the approver holding `token`. */
  asApprover(token = ADMIN_TOKEN) {
    const auth = { Authorization: `Bearer ${token}` };
    return {
      get: (path: string) => this.http().get(path).set(auth),
      decide: (approval_id: string, approved: boolean, comment?: string) =>
        this.http()
          .post('/approve')
          .set(auth)
          .send({ approval_id, approved, ...(comment !== undefined && { comment }) }),
    };
  }
}

let counter = 0;
export function envelope(agent: string, tool: string, args: unknown, opts: { version?: string; requestId?: string } = {}) {
  return { agent_id: agent, agent_version: opts.version ?? '1.0.0', request_id: opts.requestId ?? `req_${process.pid}_${++counter}`, tool, arguments: args };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const limit = (l: { limit: number; ttl_s: number }) => `{ limit: ${l.limit}, ttl_s: ${l.ttl_s} }`;

function testConfig(edPublicKey: KeyObject, options: TestGatewayOptions): string {
  const pem = edPublicKey.export({ type: 'spki', format: 'pem' }).toString().trim().replace(/\n/g, '\\n');
  const pathOnly = `{ type: object, required: [path], additionalProperties: false, properties: { path: { type: string, minLength: 1 } } }`;
  const writeArgs = `{ type: object, required: [path, content], additionalProperties: false, properties: { path: { type: string }, content: { type: string }, create_dirs: { type: boolean } } }`;
  return `
settings:
  signature_tolerance_s: 60
  max_body_bytes: ${options.maxBodyBytes ?? 65536}
  approval_ttl_s: ${options.approvalTtlS ?? 3600}
${options.approvalRetentionS ? `  approval_retention_s: ${options.approvalRetentionS}` : ''}
  max_pending_approvals_per_agent: ${options.maxPending ?? 20}
  audit_fsync: ${options.auditFsync ?? false}
  unauthenticated_rate_limit: ${limit(options.ipLimit ?? { limit: 10000, ttl_s: 60 })}
  mcp: { approval_wait_s: ${options.mcp?.approvalWaitS ?? 25}, allowed_origins: ${JSON.stringify(options.mcp?.allowedOrigins ?? [])} }
${options.mcpResyncS ? `  mcp_resync_s: ${options.mcpResyncS}` : ''}
${options.approvalWebhook ? `  approval_webhook: ${JSON.stringify({ url: options.approvalWebhook.url, allowed_hosts: options.approvalWebhook.allowedHosts, console_url: options.approvalWebhook.consoleUrl })}` : ''}
roles:
  deployer: {}
  reader: {}
agents:
  - id: ${HMAC_AGENT}
    role: deployer
    key: { alg: hmac-sha256, secret: "\${env:TEST_DEPLOY_KEY}" }
    mcp_tokens:
      - { token_sha256: "${sha256(MCP_DEPLOY_TOKEN)}", agent_version: "1.0.0" }
      - { token_sha256: "${sha256(MCP_EXPIRED_TOKEN)}", expires_at: "2020-01-01T00:00:00Z" }
${options.agentLimit ? `    rate_limit: ${limit(options.agentLimit)}` : ''}
  - id: ${ED_AGENT}
    role: reader
    key: { alg: ed25519, public_key: "${pem}" }
    versions: ["1.x", "2.0.0"]
    mcp_tokens: [{ token_sha256: "${sha256(MCP_READER_TOKEN)}", agent_version: "1.4.0" }]
approvers:
  - { id: admin, token_sha256: "${sha256(ADMIN_TOKEN)}", audit: true }
  - { id: writer, token_sha256: "${sha256(WRITER_TOKEN)}", tools: [write_file] }
tools:
  read_file:   { kind: fs.read, roles: [deployer, reader], description: Read a file, input_schema: ${pathOnly} }
  list_dir:    { kind: fs.list, roles: [deployer, reader], input_schema: ${pathOnly} }
  write_file:  { kind: fs.write, roles: [deployer], requires_approval: true, input_schema: ${writeArgs} }
  delete_file: { kind: fs.delete, roles: [deployer], requires_approval: true, input_schema: ${pathOnly} }
  write_now:   { kind: fs.write, roles: [deployer], requires_approval: false, input_schema: ${writeArgs} }
  delete_now:  { kind: fs.delete, roles: [deployer], requires_approval: false, input_schema: ${pathOnly} }
  limited_read: { kind: fs.read, roles: [deployer], input_schema: ${pathOnly}${options.toolLimit ? `, rate_limit: ${limit(options.toolLimit)}` : ''} }
  configure:
    kind: fs.read
    roles: [deployer]
    forbidden_fields: [webhook_url]
    input_schema: { type: object, properties: { path: { type: string } }, required: [path] }
${options.extraTools ?? ''}
mcp_servers:
${options.mcpServers ?? '  {}'}
secrets:
${options.secrets ?? '  {}'}
`;
}
