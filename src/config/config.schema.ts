import type { ToolKindConfig } from './tool-kind-config';

// JSON Schema of policies/gateway.yaml (each setting is commented there). Defaults live here and nowhere else:
// the loader validates with `useDefaults`, so every optional setting is filled in once, at load.

const identifier = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' } as const;
const rateLimit = {
  type: 'object',
  additionalProperties: false,
  required: ['limit', 'ttl_s'],
  properties: {
    limit: { type: 'integer', minimum: 1 },
    ttl_s: { type: 'integer', minimum: 1 },
  },
} as const;
const fieldList = { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true } as const;

/** The fields every tool entry has, whatever its kind; a kind's schema spreads them into its own. */
export const toolCommonSchema = {
  description: { type: 'string', maxLength: 1024 },
  roles: { type: 'array', items: identifier, uniqueItems: true },
  input_schema: { type: 'object' },
  timeout_ms: { type: 'integer', minimum: 1, maximum: 600000, default: 10000 },
  forbidden_fields: fieldList,
  rate_limit: rateLimit,
} as const;

/** audit_sinks[]: the fields of every sink, then each type's own. */
const auditSinkCommon = {
  name: identifier,
  // The most records one send carries (a backlog goes out in batches of this size).
  batch_size: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  // How long one send may take before it counts as failed and is retried.
  timeout_ms: { type: 'integer', minimum: 100, maximum: 120000, default: 10000 },
  // Retries wait 1 s, then twice as long each time, up to this.
  max_backoff_s: { type: 'integer', minimum: 1, maximum: 3600, default: 60 },
  // A listed host name may resolve to a private address (a SIEM inside the network).
  allow_private_networks: { type: 'boolean', default: false },
} as const;
const auditSinkUrl = {
  url: { type: 'string', minLength: 1, maxLength: 2048 },
  allowed_hosts: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, uniqueItems: true },
  // Values may hold ${secret:NAME}, read at each send.
  headers: { type: 'object', default: {}, additionalProperties: { type: 'string', maxLength: 8192 } },
} as const;
const auditSinkSchema = {
  type: 'object',
  required: ['name', 'type'],
  discriminator: { propertyName: 'type' },
  oneOf: [
    {
      additionalProperties: false,
      required: ['name', 'type', 'host', 'port'],
      properties: {
        type: { const: 'syslog' },
        ...auditSinkCommon,
        host: { type: 'string', minLength: 1, maxLength: 253 },
        port: { type: 'integer', minimum: 1, maximum: 65535 },
        // Present: TLS (RFC 5425), with the system's CAs or the PEM file ca_file; server_name defaults to host.
        tls: {
          type: 'object',
          additionalProperties: false,
          properties: { ca_file: { type: 'string', minLength: 1 }, server_name: { type: 'string', minLength: 1, maxLength: 253 } },
        },
        // RFC 5424 facility (13: log audit) and APP-NAME.
        facility: { type: 'integer', minimum: 0, maximum: 23, default: 13 },
        app_name: { type: 'string', pattern: '^[!-~]{1,48}$', default: 'agent-gateway' },
      },
    },
    {
      additionalProperties: false,
      required: ['name', 'type', 'url', 'allowed_hosts'],
      properties: { type: { const: 'http' }, ...auditSinkCommon, ...auditSinkUrl },
    },
    {
      additionalProperties: false,
      required: ['name', 'type', 'url', 'allowed_hosts'],
      properties: { type: { const: 'otlp' }, ...auditSinkCommon, ...auditSinkUrl, service_name: { type: 'string', minLength: 1, default: 'agent-gateway' } },
    },
  ],
} as const;

/** The schema of a tool entry of `kind`: the common fields, a required input_schema, and the kind's own fields. */
export function toolEntrySchema(
  kind: string,
  approvalByDefault: boolean,
  extra: { required: string[]; properties: object } = { required: [], properties: {} },
) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['kind', 'roles', 'input_schema', ...extra.required],
    properties: {
      kind: { const: kind },
      requires_approval: { type: 'boolean', default: approvalByDefault },
      ...toolCommonSchema,
      ...extra.properties,
    },
  };
}

/** The whole document: the common sections, each kind's own settings and sections, and tools of the kinds given. */
export function gatewayConfigSchema(kinds: readonly ToolKindConfig[]) {
  const { secrets, tools, settings, ...before } = commonSchema.properties;
  const { approval_webhook, ...settingsBefore } = settings.properties;
  return {
    ...commonSchema,
    properties: {
      ...before,
      settings: { ...settings, properties: { ...settingsBefore, ...Object.assign({}, ...kinds.map((kind) => kind.settings ?? {})), approval_webhook } },
      ...Object.assign({}, ...kinds.map((kind) => kind.sections ?? {})),
      secrets,
      tools: { ...tools, additionalProperties: { ...tools.additionalProperties, oneOf: kinds.flatMap((kind) => kind.toolSchemas) } },
    },
  };
}

const commonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['agents', 'tools'],
  properties: {
    settings: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        signature_tolerance_s: { type: 'integer', minimum: 1, maximum: 3600, default: 300 },
        idempotency_ttl_s: { type: 'integer', minimum: 1, default: 86400 },
        approval_ttl_s: { type: 'integer', minimum: 1, default: 3600 },
        // Decided and expired approvals are deleted this long after their decision or expiry (30 days).
        approval_retention_s: { type: 'integer', minimum: 1, default: 2592000 },
        max_pending_approvals_per_agent: { type: 'integer', minimum: 1, default: 20 },
        max_body_bytes: { type: 'integer', minimum: 1024, maximum: 67108864, default: 1048576 },
        audit_fsync: { type: 'boolean', default: false },
        unauthenticated_rate_limit: { ...rateLimit, default: { limit: 30, ttl_s: 60 } },
        forbidden_fields: {
          ...fieldList,
          default: ['password', 'passwd', 'api_key', 'apikey', 'secret', 'token', 'access_token', 'private_key', 'authorization'],
        },
        mcp: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            // Browser origins allowed to call /mcp (an Origin header not listed → 403). Default: none.
            allowed_origins: { type: 'array', items: { type: 'string', pattern: '^https?://[^/]+$' }, uniqueItems: true, default: [] },
            // How long a tools/call that needs approval waits for a human when the client asked for progress.
            approval_wait_s: { type: 'integer', minimum: 0, maximum: 300, default: 25 },
            // How many such calls wait at once, per agent and in all (per instance); the others get the pending answer at once.
            max_waiting_calls_per_agent: { type: 'integer', minimum: 0, maximum: 100, default: 2 },
            max_waiting_calls: { type: 'integer', minimum: 0, maximum: 10000, default: 64 },
          },
        },
        // When an approval becomes pending, a Slack-compatible JSON message is POSTed to `url`.
        approval_webhook: {
          type: 'object',
          additionalProperties: false,
          required: ['url', 'allowed_hosts'],
          properties: {
            url: { type: 'string', minLength: 1, maxLength: 2048 },
            allowed_hosts: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, uniqueItems: true },
            // The console as approvers reach it (behind a proxy, its public address). Default: http://localhost:$PORT/console.
            console_url: { type: 'string', minLength: 1, maxLength: 2048 },
          },
        },
      },
    },
    roles: {
      type: 'object',
      default: {},
      propertyNames: identifier,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: { rate_limit: rateLimit },
      },
    },
    agents: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'role', 'key'],
        properties: {
          id: identifier,
          role: identifier,
          key: {
            type: 'object',
            required: ['alg'],
            discriminator: { propertyName: 'alg' },
            oneOf: [
              {
                additionalProperties: false,
                required: ['alg', 'secret'],
                properties: { alg: { const: 'hmac-sha256' }, secret: { type: 'string', minLength: 16 } },
              },
              {
                additionalProperties: false,
                required: ['alg', 'public_key'],
                properties: { alg: { const: 'ed25519' }, public_key: { type: 'string', minLength: 1 } },
              },
            ],
          },
          rate_limit: rateLimit,
          versions: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[0-9xX*]+(\\.[0-9A-Za-z*-]+)*$' } },
          // OAuth client ids (a token's client_id, or else its azp) acting as this agent at the MCP door.
          oauth_clients: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 256 }, uniqueItems: true },
          mcp_tokens: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['token_sha256'],
              properties: {
                token_sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
                agent_version: { type: 'string', pattern: '^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$' },
                expires_at: { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$' },
              },
            },
          },
        },
      },
    },
    approvers: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'token_sha256'],
        properties: {
          id: identifier,
          token_sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
          tools: { type: 'array', items: { type: 'string' }, uniqueItems: true },
          audit: { type: 'boolean', default: false },
        },
      },
    },
    // The MCP door as an OAuth 2.1 resource server: which issuers' access tokens it accepts, minted for which resource.
    oauth: {
      type: 'object',
      additionalProperties: false,
      required: ['resource', 'issuers'],
      properties: {
        resource: { type: 'string', minLength: 1, maxLength: 2048 },
        issuers: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['issuer', 'allowed_hosts'],
            properties: {
              issuer: { type: 'string', minLength: 1, maxLength: 2048 },
              allowed_hosts: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, uniqueItems: true },
              allow_private_networks: { type: 'boolean', default: false },
              role_claim: { type: 'string', pattern: '^[A-Za-z0-9_:/-]+(\\.[A-Za-z0-9_:/-]+)*$', maxLength: 256 },
              // Opaque access tokens are checked at the issuer's introspection endpoint (RFC 7662) with these client credentials.
              introspection: {
                type: 'object',
                additionalProperties: false,
                required: ['client_id', 'client_secret'],
                properties: {
                  client_id: { type: 'string', minLength: 1, maxLength: 256 },
                  client_secret: { type: 'string', pattern: '^\\$\\{secret:[A-Za-z0-9_.-]+\\}$' },
                },
              },
            },
          },
        },
      },
    },
    // Where every audit record is streamed too, as written (README, "Operations"); the local chain stays the system of record.
    audit_sinks: { type: 'array', default: [], items: auditSinkSchema },
    secrets: {
      type: 'object',
      default: {},
      additionalProperties: {
        type: 'object',
        required: ['from'],
        discriminator: { propertyName: 'from' },
        oneOf: [
          {
            additionalProperties: false,
            required: ['from', 'name'],
            properties: { from: { const: 'env' }, name: { type: 'string', minLength: 1 } },
          },
          {
            additionalProperties: false,
            required: ['from', 'path'],
            properties: { from: { const: 'file' }, path: { type: 'string', minLength: 1 } },
          },
        ],
      },
    },
    tools: {
      type: 'object',
      // Names MCP clients and model APIs accept; approval_status is the gateway's own.
      propertyNames: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$', not: { const: 'approval_status' } },
      additionalProperties: {
        type: 'object',
        required: ['kind'],
        discriminator: { propertyName: 'kind' },
        // Each kind's entries (gatewayConfigSchema).
        oneOf: [],
      },
    },
  },
} as const;
