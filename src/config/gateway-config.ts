import type { KeyObject } from 'node:crypto';
import type { ValidateFunction } from 'ajv';
import unhomoglyph from 'unhomoglyph';

export interface RateLimit {
  limit: number;
  ttl_s: number;
}

export interface Settings {
  signature_tolerance_s: number;
  idempotency_ttl_s: number;
  approval_ttl_s: number;
  /** Decided and expired approvals are deleted this many seconds after their decision or expiry. */
  approval_retention_s: number;
  max_pending_approvals_per_agent: number;
  max_body_bytes: number;
  /** fdatasync the audit log before acknowledging (group commit: one sync per batch of records). */
  audit_fsync: boolean;
  unauthenticated_rate_limit: RateLimit;
  forbidden_fields: string[];
  mcp: { allowed_origins: string[]; approval_wait_s: number; max_waiting_calls_per_agent: number; max_waiting_calls: number };
  approval_webhook?: ApprovalWebhookSettings;
}

/** settings.approval_webhook: where new pending approvals are announced. */
export interface ApprovalWebhookSettings {
  url: string;
  /** Canonical host names or IP literals (as the WHATWG URL parser writes them); the url's host is one of them. */
  allowed_hosts: string[];
  /** The console link sent in each message. */
  console_url: string;
}

export type AgentKey = { alg: 'hmac-sha256'; secret: Buffer } | { alg: 'ed25519'; publicKey: KeyObject };

/** A bearer token for the MCP door: only its SHA-256 is known. */
export interface McpToken {
  sha256: Buffer;
  /** The build of the agent the token was issued to: what row 8 checks and the audit records. */
  agent_version: string;
  /** Unix milliseconds; none: the token does not expire. */
  expires_at?: number;
}

/**
 * Who acts on a request: a configured agent, or a caller an OAuth token maps to a role without
 * its being declared (then its id is `<issuer>#<subject>`). Only what every caller has.
 */
export interface Agent {
  id: string;
  role: string;
  rate_limit?: RateLimit;
}

/** An agent declared under `agents:`, with its credentials. */
export interface ConfiguredAgent extends Agent {
  key: AgentKey;
  versions?: string[];
  mcp_tokens: McpToken[];
  /** OAuth client ids (a token's `client_id`, or else its `azp`) that act as this agent at the MCP door. */
  oauth_clients: string[];
}

/** oauth.issuers[]: an authorization server whose access tokens the MCP door accepts. */
export interface OAuthIssuer {
  /** Equals the tokens' `iss`; its metadata is discovered under {issuer}/.well-known/. */
  issuer: string;
  /** Canonical host names or IP literals that discovery and the JWKS may be fetched from. */
  allowed_hosts: string[];
  /** Listed host names may resolve to private addresses (an identity provider inside the network). */
  allow_private_networks: boolean;
  /** A claim (a dotted path, as `realm_access.roles`) naming roles: an undeclared caller acts in the first one that is declared. */
  role_claim?: string;
  /** Opaque tokens are asked about at the issuer's introspection endpoint (RFC 7662), as this client; its secret a `${secret:NAME}`. */
  introspection?: { client_id: string; client_secret: string };
}

/** The `oauth:` section: the MCP door as an OAuth 2.1 resource server (README, "Sign in with your identity provider"). */
export interface OAuthSettings {
  /** The public URL of /mcp: what tokens must be minted for (`aud`), and `resource` in the metadata. */
  resource: string;
  issuers: OAuthIssuer[];
}

/** audit_sinks[]: where every audit record is also streamed, as written (see policies/gateway.yaml). */
interface AuditSinkCommon {
  /** Names the sink's cursor and its lag metric; unique. */
  name: string;
  batch_size: number;
  timeout_ms: number;
  max_backoff_s: number;
  allow_private_networks: boolean;
}

/** An HTTP receiver: `url` on one of `allowed_hosts` (canonical), `headers` may hold `${secret:NAME}`. */
interface AuditSinkUrl {
  url: string;
  allowed_hosts: string[];
  headers: Record<string, string>;
}

export type AuditSinkConfig =
  | (AuditSinkCommon & {
      type: 'syslog';
      host: string;
      port: number;
      /** Present: TLS, with the system's CAs or those of `ca_file` (read at each connection). */
      tls?: { ca_file?: string; server_name?: string };
      facility: number;
      app_name: string;
    })
  | (AuditSinkCommon & AuditSinkUrl & { type: 'http' })
  | (AuditSinkCommon & AuditSinkUrl & { type: 'otlp'; service_name: string });

export interface Approver {
  id: string;
  token_sha256: Buffer;
  tools?: string[];
  /** May read the audit log (GET /api/audit). */
  audit: boolean;
}

export type SecretSource = { from: 'env'; name: string } | { from: 'file'; path: string };

/** `${secret:NAME}` in a value the gateway sends (an http header, an upstream's env): resolved when the call runs. */
export const SECRET_REFERENCE = /\$\{secret:([A-Za-z0-9_.-]+)\}/g;

/** What every tool has, whatever its kind. */
export interface ToolCommon {
  name: string;
  /** The `kind:` of its entry: which tool kind parses and runs it. */
  kind: string;
  description: string;
  roles: string[];
  requires_approval: boolean;
  input_schema: Record<string, unknown>;
  timeout_ms: number;
  /** Normalised (see normalizeFieldName) global and per-tool forbidden keys. */
  forbidden_fields: ReadonlySet<string>;
  rate_limit?: RateLimit;
  /** The input_schema compiled once at load (ajv, strict mode; an upstream's pinned schema leniently), stopping at the first error. */
  validateArguments: ValidateFunction;
  /** The same schema compiled the same way, but listing every error (for a 400's details; compiled on first use). */
  compileListingAllErrors: () => ValidateFunction;
}

/**
 * Each tool kind adds its member of Tool here, from its own folder, by module augmentation:
 * `declare module '../../config/gateway-config' { interface ToolTypes { http: HttpTool } }`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by the kinds' augmentations
export interface ToolTypes {}

type AnyToolField = { [K in keyof ToolTypes]: keyof ToolTypes[K] }[keyof ToolTypes];
/** A member that says the other kinds' fields are absent, so `tool.request?.url` reads on any tool. */
type Exclusive<T> = T & { readonly [F in Exclude<AnyToolField, keyof T>]?: undefined };

/** A configured tool: a union discriminated by `kind`, one member per tool kind (see ToolTypes). */
export type Tool = { [K in keyof ToolTypes]: Exclusive<ToolTypes[K]> }[keyof ToolTypes];

/**
 * What a tool kind made of its own top-level sections of gateway.yaml (mcp_servers), by kind name.
 * A kind declares its entry by module augmentation, as it does its Tool member.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by the kinds' augmentations
export interface ConfigSections {}

export interface RuntimePaths {
  workspace: string;
  dataDir: string;
  auditLog: string;
}

/**
 * The validated, typed configuration. Built only by loadGatewayConfig, then read-only: its fields
 * cannot be assigned; only a live reload replaces them, all at once (GatewayConfig.replace).
 */
export class GatewayConfig {
  /** The file it came from, as given (shown in messages). */
  readonly source!: string;
  readonly settings!: Settings;
  readonly roles!: Record<string, { rate_limit?: RateLimit }>;
  readonly agents!: ReadonlyMap<string, ConfiguredAgent>;
  readonly approvers!: readonly Approver[];
  readonly secrets!: Record<string, SecretSource>;
  /** The `oauth:` section; absent: the MCP door takes static tokens only and serves no OAuth metadata. */
  readonly oauth?: OAuthSettings;
  readonly tools!: ReadonlyMap<string, Tool>;
  /** `audit_sinks:` (empty: the audit log is only kept locally). */
  readonly auditSinks!: readonly AuditSinkConfig[];
  /** What each tool kind's prepare() returned for its own sections (ConfigSections). */
  readonly sections!: Partial<ConfigSections>;
  readonly paths!: RuntimePaths;
  /** GATEWAY_REDIS_URL: rate-limit counters and idempotency keys live there, shared by instances. */
  readonly redisUrl?: string;
  /** GATEWAY_DATABASE_URL: approvals and the audit log live in PostgreSQL, shared by instances. */
  readonly databaseUrl?: string;
  /** GATEWAY_POLICY_ENGINE, GATEWAY_OPA_URL, GATEWAY_OPA_TIMEOUT_MS. */
  readonly policy!: { engine: 'builtin' | 'opa'; opaUrl: string; opaTimeoutMs: number };
  /** Credentials (agent keys, approver tokens) that came from a shipped default, not the environment. */
  readonly demoCredentials!: readonly string[];
  /** GATEWAY_AUDIT_KEY: the audit chain's HMAC key. Unset: the chain proves order, not authorship. */
  readonly auditKey?: Buffer;

  constructor(init: GatewayConfig) {
    defineReadOnly(this, init);
  }

  /**
   * A live reload: every field of `live` takes `next`'s value in one synchronous step, so no call
   * sees a mix of the two; what a call already holds (its agent, its tool) stays as it was. Only
   * the config reloader calls it (src/config/config-reload.ts).
   */
  static replace(live: GatewayConfig, next: GatewayConfig): void {
    const fields = { ...Object.fromEntries(Object.keys(live).map((key) => [key, undefined])), ...next };
    defineReadOnly(live, fields);
  }
}

function defineReadOnly(target: GatewayConfig, fields: GatewayConfig): void {
  for (const [key, value] of Object.entries(fields)) Object.defineProperty(target, key, { value, enumerable: true, writable: false, configurable: true });
}

/**
 * The one spelling of a key that forbidden fields and redaction compare, so a
 * lookalike cannot pass for another key: compatibility forms folded (NFKC: fullwidth `ｗ` → `w`),
 * lower case, confusables mapped to their Unicode prototype (Cyrillic `а` → `a`, `0` → `o`), accents
 * dropped, and everything that is not a letter or a digit removed (`-`, `_`, `.`, tabs, zero-width
 * characters). `PАSS.word`, `pass_word` and `Password` all become `password`.
 */
export function normalizeFieldName(key: string): string {
  // Lower case before the confusables map too: it maps `I` to `l`, which would split `API`/`api`.
  return unhomoglyph(key.normalize('NFKC').toLowerCase())
    .toLowerCase()
    .normalize('NFD')
    .replace(/[^\p{L}\p{N}]+/gu, '');
}
