import Ajv, { type ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { ConfigError } from '../../config/config-error';
import { toolCommonSchema } from '../../config/config.schema';
import { SECRET_REFERENCE, type SecretSource } from '../../config/gateway-config';
import type { ConfigFail as Fail, ToolKindConfig } from '../../config/tool-kind-config';
import { canonicalHost } from '../../config/url-rules';
import { catalogKey, MCP_LOCK_FILE, type McpLock, mcpLockPath, McpLockProblem, readMcpLock } from './mcp-lock';
import type { McpFederated, McpHintOverrides, McpSection, McpServerConfig, McpTool, McpToolBinding } from './mcp-tool';

// An upstream tool. No input_schema needed (default: the pinned upstream inputSchema); timeout_ms defaults to the server's.
const mcpToolSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'roles', 'server', 'tool'],
  properties: {
    kind: { const: 'mcp' },
    requires_approval: { type: 'boolean', default: false },
    ...toolCommonSchema,
    timeout_ms: { type: 'integer', minimum: 1, maximum: 600000 },
    server: { type: 'string', pattern: '^[a-z0-9_]{1,32}$' },
    tool: { type: 'string', minLength: 1, maxLength: 128 },
    // Over the upstream's pinned annotations, hint by hint: what MCP clients are told.
    annotations: {
      type: 'object',
      additionalProperties: false,
      properties: {
        title: { type: 'string', minLength: 1, maxLength: 128 },
        readOnlyHint: { type: 'boolean' },
        destructiveHint: { type: 'boolean' },
        idempotentHint: { type: 'boolean' },
        openWorldHint: { type: 'boolean' },
      },
    },
  },
} as const;

// Streamable HTTP (url, headers, allowed_hosts) or stdio (command, env, cwd): buildMcpServers checks which.
const mcpServerSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    url: { type: 'string', minLength: 1, maxLength: 2048 },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    allowed_hosts: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, uniqueItems: true },
    allow_private_networks: { type: 'boolean' },
    command: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    env: { type: 'object', propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }, additionalProperties: { type: 'string' } },
    cwd: { type: 'string', minLength: 1 },
    timeout_ms: { type: 'integer', minimum: 1, maximum: 600000, default: 30000 },
    // Resources and prompts of this server that agents of these roles may list and read (none unless declared).
    resources: {
      type: 'object',
      additionalProperties: false,
      required: ['roles', 'uris'],
      properties: {
        roles: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
        // Exact URIs, or prefixes ending in '*' (`demo://resource/dynamic/text/*`).
        uris: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1, maxLength: 2048 }, uniqueItems: true },
      },
    },
    prompts: {
      type: 'object',
      additionalProperties: false,
      required: ['roles', 'names'],
      properties: {
        roles: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
        names: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1, maxLength: 128 }, uniqueItems: true },
      },
    },
  },
} as const;

/**
 * gateway.yaml's mcp_servers and `kind: mcp` entries. `lock: 'skip'` binds tools without their pins
 * (for npm run mcp:pin, which writes mcp-lock.json); otherwise a tool without a pin is a config error.
 */
export function mcpKindConfig(lock: 'require' | 'skip'): ToolKindConfig<McpToolBinder> {
  return {
    name: 'mcp',
    kinds: ['mcp'],
    toolSchemas: [mcpToolSchema],
    settings: {
      // How often upstream MCP servers' tools are listed again and compared with mcp-lock.json.
      mcp_resync_s: { type: 'integer', minimum: 1, maximum: 86400, default: 300 },
    },
    sections: {
      mcp_servers: { type: 'object', default: {}, propertyNames: { type: 'string', pattern: '^[a-z0-9_]{1,32}$' }, additionalProperties: mcpServerSchema },
    },
    prepare: (raw, { file, secrets, fail }) => {
      const roles = Object.keys((raw.roles as Record<string, unknown> | undefined) ?? {});
      const binder = new McpToolBinder(file, buildMcpServers(raw.mcp_servers as Record<string, RawMcpServer>, secrets, fail, roles), lock, fail);
      binder.bindCatalog();
      return binder;
    },
    parse(name, entry, { fail }, binder) {
      const mcp = binder.bind(name, { server: entry.server as string, tool: entry.tool as string });
      const outputSchema = mcp.pinned.definition.outputSchema;
      if (outputSchema) {
        try {
          mcp.validateOutput = binder.compile(outputSchema);
        } catch (err) {
          fail(`tools.${name} (the outputSchema pinned in ${MCP_LOCK_FILE})`, (err as Error).message);
        }
      }
      const fields: Pick<McpTool, 'mcp' | 'annotations'> = {
        mcp,
        ...(entry.annotations !== undefined && { annotations: entry.annotations as McpHintOverrides }),
      };
      return {
        fields,
        defaults: {
          description: mcp.pinned.definition.description,
          timeout_ms: binder.timeoutOf(mcp.server),
          input_schema: {
            schema: mcp.pinned.definition.inputSchema,
            source: `(the inputSchema pinned in ${MCP_LOCK_FILE})`,
            compile: (schema, allErrors) => binder.compile(schema, allErrors),
          },
        },
      };
    },
  };
}

export const mcpToolConfig = mcpKindConfig('require');

/** mcp_servers.<name> as written in gateway.yaml, after the schema filled in defaults. */
export interface RawMcpServer {
  url?: string;
  headers?: Record<string, string>;
  allowed_hosts?: string[];
  allow_private_networks?: boolean;
  command?: string[];
  env?: Record<string, string>;
  cwd?: string;
  timeout_ms: number;
  resources?: { roles: string[]; uris: string[] };
  prompts?: { roles: string[]; names: string[] };
}

const HTTP_ONLY = ['headers', 'allowed_hosts', 'allow_private_networks'] as const;
const STDIO_ONLY = ['env', 'cwd'] as const;

/**
 * Streamable HTTP (`url`) or stdio (`command`): one of the two, with only its own fields; every
 * `${secret:…}` declared; federated resources and prompts for declared roles only (`roles`: the
 * config's roles; undefined: not checked), a prompt name offered by one server only.
 */
export function buildMcpServers(
  raw: Record<string, RawMcpServer>,
  secrets: Readonly<Record<string, SecretSource>>,
  fail: Fail,
  roles?: readonly string[],
): Map<string, McpServerConfig> {
  const servers = new Map<string, McpServerConfig>();
  const promptServers = new Map<string, string>();
  for (const [name, s] of Object.entries(raw)) {
    const at = `mcp_servers.${name}`;
    const federated = federatedOf(at, s, fail, roles);
    for (const prompt of s.prompts?.names ?? []) {
      const other = promptServers.get(prompt);
      if (other !== undefined)
        fail(`${at}.prompts.names`, `prompt "${prompt}" is also offered by mcp_servers.${other}: a prompt name must be offered by one server`);
      promptServers.set(prompt, name);
    }
    const refuseSecrets = (values: Record<string, string>, field: string) => {
      for (const [key, value] of Object.entries(values)) {
        for (const [, secret] of value.matchAll(SECRET_REFERENCE)) {
          if (!Object.prototype.hasOwnProperty.call(secrets, secret)) fail(`${at}.${field}.${key}`, `secret "${secret}" is not declared under secrets`);
        }
      }
    };
    if ((s.url === undefined) === (s.command === undefined)) fail(at, 'give either url (Streamable HTTP) or command (stdio)');
    if (s.command !== undefined) {
      for (const field of HTTP_ONLY) if (s[field] !== undefined) fail(`${at}.${field}`, 'is for url (Streamable HTTP) servers, not command (stdio) ones');
      refuseSecrets(s.env ?? {}, 'env');
      servers.set(name, { name, transport: 'stdio', command: s.command, env: s.env ?? {}, cwd: s.cwd, timeout_ms: s.timeout_ms, ...federated });
      continue;
    }
    for (const field of STDIO_ONLY) if (s[field] !== undefined) fail(`${at}.${field}`, 'is for command (stdio) servers, not url (Streamable HTTP) ones');
    if (s.allowed_hosts === undefined) fail(at, 'missing required field "allowed_hosts" (the hosts the gateway may reach for this server)');
    let url: URL;
    try {
      url = new URL(s.url!);
    } catch {
      return fail(`${at}.url`, 'not an absolute URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`${at}.url`, 'must be http or https');
    if (url.username || url.password) fail(`${at}.url`, 'must not hold credentials (use headers with ${secret:…})');
    const allowed = s.allowed_hosts.map((host, i) => canonicalHost(host) || fail(`${at}.allowed_hosts[${i}]`, `"${host}" is not a host name or IP address`));
    if (!allowed.includes(url.hostname)) fail(`${at}.url`, `host "${url.hostname}" is not in allowed_hosts`);
    refuseSecrets(s.headers ?? {}, 'headers');
    servers.set(name, {
      name,
      transport: 'http',
      url: url.href,
      headers: s.headers ?? {},
      allowed_hosts: allowed,
      allow_private_networks: s.allow_private_networks ?? false,
      timeout_ms: s.timeout_ms,
      ...federated,
    });
  }
  return servers;
}

/** A server's `resources:` and `prompts:`, checked: known roles, a '*' only at the end of a uri (a prefix). Pins come later (bindCatalog). */
function federatedOf(at: string, s: RawMcpServer, fail: Fail, roles: readonly string[] | undefined): McpFederated {
  const checkRoles = (field: string, list: string[]) =>
    list.forEach((role, i) => roles && !roles.includes(role) && fail(`${at}.${field}.roles[${i}]`, `role "${role}" is not declared under roles`));
  const out: McpFederated = {};
  if (s.resources) {
    checkRoles('resources', s.resources.roles);
    s.resources.uris.forEach((uri, i) => {
      if (uri.indexOf('*') !== -1 && uri.indexOf('*') !== uri.length - 1) fail(`${at}.resources.uris[${i}]`, "'*' may only end a uri (a prefix)");
      if (uri === '*') fail(`${at}.resources.uris[${i}]`, "a bare '*' would offer every uri: name a prefix (scheme://path/*)");
    });
    out.resources = { roles: s.resources.roles, uris: s.resources.uris, pinned: new Map() };
  }
  if (s.prompts) {
    checkRoles('prompts', s.prompts.roles);
    out.prompts = { roles: s.prompts.roles, names: s.prompts.names, pinned: new Map() };
  }
  return out;
}

/**
 * Upstream schemas are the upstream's, not the operator's: unknown keywords and formats are tolerated,
 * not refused. Draft-07 unless the schema says 2020-12 (as zod-made schemas of SDK servers do).
 */
function upstreamAjvs(allErrors: boolean): { draft07: Ajv; draft2020: Ajv2020 } {
  const draft07 = new Ajv({ strict: false, allErrors, validateSchema: false });
  const draft2020 = new Ajv2020({ strict: false, allErrors, validateSchema: false });
  addFormats(draft07);
  addFormats(draft2020);
  return { draft07, draft2020 };
}

let repinAjvs: { first: ReturnType<typeof upstreamAjvs>; all?: ReturnType<typeof upstreamAjvs> } | undefined;

/**
 * An upstream's schema compiled as the binder does (leniently, without `$schema` and `$id`), for a
 * definition re-pinned while the gateway runs. Throws when it does not compile.
 */
export function compileUpstreamSchema(schema: Record<string, unknown>, allErrors = false): ValidateFunction {
  repinAjvs ??= { first: upstreamAjvs(false) };
  const ajvs = allErrors ? (repinAjvs.all ??= upstreamAjvs(true)) : repinAjvs.first;
  return compileWith(ajvs, schema);
}

function compileWith(ajvs: ReturnType<typeof upstreamAjvs>, schema: Record<string, unknown>): ValidateFunction {
  const { $schema: dialect, $id: _id, ...rest } = schema;
  return (typeof dialect === 'string' && dialect.includes('2020-12') ? ajvs.draft2020 : ajvs.draft07).compile(rest);
}

/**
 * Binds `kind: mcp` tools to their server and their pin in mcp-lock.json (read once, when the first
 * mcp tool needs it). A declared tool without a pin is a config error: agents only ever see a
 * definition that was reviewed. `skip` (for npm run mcp:pin, which writes the lock) binds without pins.
 */
export class McpToolBinder implements McpSection {
  private lock?: McpLock | null;
  private readonly firstError = upstreamAjvs(false);
  private allErrors?: ReturnType<typeof upstreamAjvs>;

  constructor(
    private readonly configFile: string,
    /** mcp_servers, by name. */
    readonly servers: ReadonlyMap<string, McpServerConfig>,
    private readonly mode: 'require' | 'skip',
    private readonly fail: Fail,
  ) {}

  bind(name: string, t: { server: string; tool: string }): McpToolBinding {
    const server = this.servers.get(t.server);
    if (!server) this.fail(`tools.${name}.server`, `server "${t.server}" is not declared under mcp_servers`);
    if (this.mode === 'skip') return { server: t.server, tool: t.tool, pinned: { sha256: '', definition: { name: t.tool, inputSchema: { type: 'object' } } } };
    const entry = this.readLock()?.tools[name];
    if (!entry) this.fail(`tools.${name}`, `is not pinned in ${MCP_LOCK_FILE}: run npm run mcp:pin`);
    if (entry.server !== t.server || entry.tool !== t.tool) {
      this.fail(`tools.${name}`, `${MCP_LOCK_FILE} pins ${entry.server}/${entry.tool}, not ${t.server}/${t.tool}: run npm run mcp:pin`);
    }
    return { server: t.server, tool: t.tool, pinned: { sha256: entry.sha256, definition: entry.definition } };
  }

  /**
   * Each server's federated prompts and resources take their pins: a declared prompt without one is
   * a config error (agents only see reviewed definitions); a declared exact uri is listed to agents
   * only if the lock pins its metadata (a prefix is readable, never listed). Not for `skip`.
   */
  bindCatalog(): void {
    if (this.mode === 'skip') return;
    for (const server of this.servers.values()) {
      if (!server.prompts && !server.resources) continue;
      const lock = this.readLock();
      server.prompts?.names.forEach((name, i) => {
        const entry = lock?.prompts?.[catalogKey(server.name, name)];
        if (!entry) this.fail(`mcp_servers.${server.name}.prompts.names[${i}]`, `prompt "${name}" is not pinned in ${MCP_LOCK_FILE}: run npm run mcp:pin`);
        server.prompts!.pinned.set(name, { sha256: entry.sha256, definition: entry.definition });
      });
      for (const uri of server.resources?.uris ?? []) {
        const entry = lock?.resources?.[catalogKey(server.name, uri)];
        if (entry) server.resources!.pinned.set(uri, { sha256: entry.sha256, definition: entry.definition });
      }
    }
  }

  timeoutOf(server: string): number {
    return this.servers.get(server)!.timeout_ms;
  }

  /**
   * An upstream's inputSchema, compiled without its `$schema` and `$id` (ajv would look them up, or
   * refuse a second tool with the same `$id`); `allErrors`: a validator that lists every error.
   */
  compile(schema: Record<string, unknown>, allErrors = false): ValidateFunction {
    return compileWith(allErrors ? (this.allErrors ??= upstreamAjvs(true)) : this.firstError, schema);
  }

  private readLock(): McpLock | undefined {
    if (this.lock === undefined) {
      const path = mcpLockPath(this.configFile);
      try {
        this.lock = readMcpLock(path) ?? null;
      } catch (err) {
        if (err instanceof McpLockProblem) throw new ConfigError(path, err.at, err.message);
        throw err;
      }
    }
    return this.lock ?? undefined;
  }
}
