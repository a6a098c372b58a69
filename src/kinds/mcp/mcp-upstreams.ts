import { statSync, unwatchFile, watchFile } from 'node:fs';
import { Logger } from '@nestjs/common';
import type { CallToolResult, Progress } from '@modelcontextprotocol/client';
import type { AuditLog } from '../../audit/audit-log.service';
import { GatewayError, PolicyDenied, ToolFailed } from '../../core/errors';
import { newAuditId } from '../../core/ids';
import type { Tool } from '../../config/gateway-config';
import type { McpUpstreamsConfig as GatewayConfig } from './mcp-tool';
import type { GatewayMetrics } from '../../metrics/gateway-metrics';
import type { SecretStore } from '../../secrets/secret-store';
import { MAX_UPSTREAM_TEXT, McpConnection, type UpstreamCatalog, type UpstreamListing } from './mcp-connection';
import { EgressPools } from '../egress/egress';
import {
  catalogKey,
  definitionSha256,
  type McpLock,
  type McpLockEntry,
  McpLockProblem,
  pinnedDefinition,
  pinnedPrompt,
  pinnedResource,
  readMcpLock,
} from './mcp-lock';
import type { McpPin, McpServerConfig } from './mcp-tool';
import { compileUpstreamSchema } from './mcp-config';

/** 503: the tool's upstream has not answered since start, or no longer offers the tool (tool_unavailable). */
export class ToolUnavailable extends GatewayError {
  constructor(message: string) {
    super(503, 'tool_unavailable', 'tool_unavailable', message);
  }
}

/**
 * What the gateway knows of a declared tool's upstream definition: not listed yet (its server has
 * not answered since start), as pinned, gone from the listing, or changed (quarantined: sticky
 * until it is re-pinned, whatever the upstream does meanwhile: a new pin in mcp-lock.json that
 * matches what the server lists lifts it, without a restart).
 */
type PinState = 'unlisted' | 'pinned' | 'vanished' | 'changed';

const CHANGE: Record<Exclude<PinState, 'unlisted'>, { status: string; reason_code: string }> = {
  changed: { status: 'quarantined', reason_code: 'tool_definition_changed' },
  vanished: { status: 'unavailable', reason_code: 'tool_unavailable' },
  pinned: { status: 'available', reason_code: 'tool_available' },
};
const REPINNED = { status: 'repinned', reason_code: 'tool_repinned' };

/** How often the lock file's modification is looked for (a change triggers a resync at once). */
const LOCK_POLL_MS = 2000;

/** How long start-up waits for the servers' first listings before it goes on without the slow ones. */
export const STARTUP_WAIT_MS = 5000;
/** The largest result (a tool's, a resource's contents, a prompt's messages) passed on, as JSON. */
export const MAX_RESULT_BYTES = 1024 * 1024;

/** A federated prompt or resource, by kind, as its pin's state and its audit records name it. */
type CatalogKind = 'prompt' | 'resource';

/**
 * The `mcp` tool kind (README "Upstream MCP servers"): one connection per upstream server that has declared tools
 * (a stdio server's process is started with the gateway), the declared tools' definitions checked
 * against their pins at every listing (start, reconnection, every settings.mcp_resync_s), and the
 * calls. Each change of a pinned tool leaves an `upstream_change` audit record, a warning and a
 * metric; none of it touches readiness, so one bad upstream never takes the gateway down.
 * mcp-lock.json is read again when it changes (watched, and looked at every resync): a reviewed
 * re-pin that matches what the server lists lifts the quarantine (`upstream_change`, `repinned`).
 */
export class McpUpstreams {
  private readonly logger = new Logger('McpUpstreams');
  private readonly dispatchers = new EgressPools();
  private readonly connections = new Map<string, McpConnection>();
  private readonly declared = new Map<string, Tool[]>();
  private readonly states = new Map<string, PinState>();
  /** Of each pinned prompt and resource (by `kind:server/id`), as of the tools': what its server lists now against its pin. */
  private readonly catalogStates = new Map<string, PinState>();
  private resyncTimer?: NodeJS.Timeout;
  private resyncing?: Promise<void>;
  /** mcp-lock.json as last read while running (undefined: not read since start), and what its stat was then. */
  private lock?: McpLock;
  private lockStamp = '';
  private readonly onLockFile = () => void this.resync();
  /** Per quarantined tool, the sha256 of a new pin already reported as not matching its server's listing (said once). */
  private readonly mismatchedPins = new Map<string, string>();

  constructor(
    private readonly config: GatewayConfig,
    secrets: SecretStore,
    private readonly audit: AuditLog,
    private readonly metrics: GatewayMetrics,
  ) {
    for (const tool of config.tools.values()) {
      if (!tool.mcp) continue;
      this.declared.set(tool.mcp.server, [...(this.declared.get(tool.mcp.server) ?? []), tool]);
      this.states.set(tool.name, 'unlisted');
    }
    const deps = {
      secrets,
      dispatchers: this.dispatchers,
      logger: this.logger,
      onListed: (server: string, tools: UpstreamListing) => this.compare(server, tools),
      onCatalog: (server: string, catalog: UpstreamCatalog) => this.compareCatalog(server, catalog),
    };
    for (const server of config.mcpServers.values()) {
      for (const name of server.prompts?.pinned.keys() ?? []) this.catalogStates.set(`prompt:${catalogKey(server.name, name)}`, 'unlisted');
      for (const uri of server.resources?.pinned.keys() ?? []) this.catalogStates.set(`resource:${catalogKey(server.name, uri)}`, 'unlisted');
      if (this.declared.has(server.name) || server.prompts || server.resources) this.connections.set(server.name, new McpConnection(server, deps));
      else this.logger.log(`MCP server "${server.name}" has no tool, resource or prompt declared: not connected`);
    }
  }

  /**
   * Connects every server (starting stdio processes), waiting at most `waitMs` for their first
   * listings: a server slower than that, or hanging, goes on connecting in the background and
   * its tools answer 503 until it has listed them. Then resyncs every settings.mcp_resync_s.
   */
  async start(waitMs = STARTUP_WAIT_MS): Promise<void> {
    for (const tools of this.declared.values()) {
      // The stubs npm run mcp:pin prints have roles: []; pasted as they are, nobody can call the tool.
      for (const tool of tools.filter((t) => t.roles.length === 0))
        this.logger.warn(`tool "${tool.name}" (kind: mcp) has roles: [], so no agent can call it: add the roles that may, under tools.${tool.name}.roles`);
    }
    if (this.connections.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.connections.values()].map((connection) => connection.connect())),
      new Promise((resolve) => (timer = setTimeout(resolve, waitMs))),
    ]);
    clearTimeout(timer);
    for (const connection of this.connections.values()) {
      if (!connection.connected)
        this.logger.warn(`MCP server "${connection.server.name}" has not answered yet: its tools answer 503 tool_unavailable until it does`);
    }
    this.resyncTimer = setInterval(() => void this.resync(), this.config.settings.mcp_resync_s * 1000);
    this.resyncTimer.unref();
    // A re-pin (npm run mcp:pin) is taken up at once, not only at the next resync.
    watchFile(this.config.lockFile, { persistent: false, interval: LOCK_POLL_MS }, this.onLockFile);
  }

  /** Lists every connected server's tools again and compares them with the pins. */
  resync(): Promise<void> {
    this.resyncing ??= Promise.all([...this.connections.values()].map((connection) => connection.relist()))
      .then(() => undefined)
      .finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  /** The tool's own check (with the path and host checks), before approval is asked, and again at execution: quarantined → 403, unavailable → 503. */
  check(tool: Tool): void {
    const { server, tool: upstream } = tool.mcp!;
    switch (this.states.get(tool.name)) {
      case 'pinned':
        return;
      case 'changed':
        throw new PolicyDenied(
          'tool_definition_changed',
          `The upstream definition of tool "${tool.name}" changed since it was pinned; it is quarantined until an operator reviews it and re-pins it (npm run mcp:pin)`,
        );
      case 'vanished':
        throw new ToolUnavailable(`MCP server "${server}" no longer offers tool "${upstream}"`);
      default:
        throw new ToolUnavailable(`MCP server "${server}" has not answered since the gateway started`);
    }
  }

  /**
   * Runs the upstream tool: `{ content, structuredContent?, isError: false }` as the upstream sent
   * them, or tool_error for an upstream isError, or for a structuredContent missing or not matching
   * the pinned outputSchema (never passed on). `onProgress` takes the upstream's progress reports.
   */
  async call(tool: Tool, args: Record<string, unknown>, signal: AbortSignal, onProgress?: (progress: Progress) => void): Promise<Record<string, unknown>> {
    this.check(tool);
    const { server, tool: upstream, pinned, validateOutput } = tool.mcp!;
    const result: CallToolResult = await this.connections.get(server)!.call(pinned.definition, args, signal, tool.timeout_ms, onProgress);
    if (result.isError) {
      const text = result.content
        .flatMap((block) => (block.type === 'text' ? [block.text] : []))
        .join(' ')
        .slice(0, MAX_UPSTREAM_TEXT);
      throw new ToolFailed(`Upstream tool "${upstream}" reported an error${text ? `: ${text}` : ''}`);
    }
    if (validateOutput) {
      if (result.structuredContent === undefined)
        throw new ToolFailed(`Upstream tool "${upstream}" returned no structuredContent, though its pinned outputSchema asks for one`);
      if (!validateOutput(result.structuredContent)) {
        const first = validateOutput.errors?.[0];
        const where = first ? ` (${first.instancePath || '/'} ${first.message ?? ''})`.slice(0, MAX_UPSTREAM_TEXT) : '';
        throw new ToolFailed(`Upstream tool "${upstream}" returned structuredContent that does not match its pinned outputSchema${where}`);
      }
    }
    return capped({ content: result.content, ...(result.structuredContent !== undefined && { structuredContent: result.structuredContent }), isError: false });
  }

  /**
   * Reads a resource the config offers (the caller checked the role and the uri): its contents as
   * the upstream sent them, within the server's timeout_ms and MAX_RESULT_BYTES. A pinned uri whose
   * metadata changed is refused like a changed tool (403 resource_definition_changed).
   */
  async readResource(server: string, uri: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    this.checkCatalog('resource', server, uri);
    const connection = this.connected(server);
    // Only the contents: the upstream's cache hints are not the gateway's (it checks every read).
    const { contents } = await connection.readResource(uri, signal, connection.server.timeout_ms);
    return capped({ contents });
  }

  /** Gets a prompt the config offers (the caller checked the role and the name), as pinned: a changed one is refused (403 prompt_definition_changed). */
  async getPrompt(server: string, name: string, args: Record<string, string>, signal: AbortSignal): Promise<Record<string, unknown>> {
    this.checkCatalog('prompt', server, name);
    const connection = this.connected(server);
    const { description, messages } = await connection.getPrompt(name, args, signal, connection.server.timeout_ms);
    return capped({ ...(description !== undefined && { description }), messages });
  }

  private connected(server: string): McpConnection {
    const connection = this.connections.get(server);
    if (!connection?.connected) throw new ToolUnavailable(`MCP server "${server}" has not answered since the gateway started, or is reconnecting`);
    return connection;
  }

  /** A pinned prompt or resource as its server lists it now: quarantined → 403, gone or not listed yet → 503. An unpinned resource (a prefix) has no state. */
  private checkCatalog(kind: CatalogKind, server: string, id: string): void {
    const state = this.catalogStates.get(`${kind}:${catalogKey(server, id)}`);
    if (state === undefined || state === 'pinned') return;
    if (state === 'changed')
      throw new PolicyDenied(
        `${kind}_definition_changed`,
        `The upstream definition of ${kind} "${id}" changed since it was pinned; it is quarantined until an operator reviews it and re-pins it (npm run mcp:pin)`,
      );
    throw new ToolUnavailable(
      state === 'vanished' ? `MCP server "${server}" no longer lists ${kind} "${id}"` : `MCP server "${server}" has not answered since the gateway started`,
    );
  }

  async close(): Promise<void> {
    clearInterval(this.resyncTimer);
    unwatchFile(this.config.lockFile, this.onLockFile);
    await Promise.all([...this.connections.values()].map((connection) => connection.close()));
    await this.dispatchers.close();
  }

  /**
   * The declared tools of `server` against what it lists now. A definition that differs from its
   * pin is quarantined, unless mcp-lock.json now pins exactly what is listed (a reviewed re-pin):
   * then the tool takes the new pin and is available again.
   */
  private async compare(server: string, listed: UpstreamListing): Promise<void> {
    const byName = new Map(listed.map((definition) => [definition.name, definition]));
    this.reloadLock();
    for (const tool of this.declared.get(server) ?? []) {
      const before = this.states.get(tool.name)!;
      const found = byName.get(tool.mcp!.tool);
      const listedSha256 = found && definitionSha256(pinnedDefinition(found));
      if (listedSha256 !== undefined && listedSha256 !== tool.mcp!.pinned.sha256 && this.repin(tool, listedSha256)) {
        this.states.set(tool.name, 'pinned');
        await this.report(tool, 'repinned', listedSha256);
        continue;
      }
      if (before === 'changed') {
        this.reportMismatchedPin(tool, listedSha256);
        continue;
      }
      const now: PinState = !found ? 'vanished' : listedSha256 === tool.mcp!.pinned.sha256 ? 'pinned' : 'changed';
      this.states.set(tool.name, now);
      if (now === before || (before === 'unlisted' && now === 'pinned')) continue;
      await this.report(tool, now, listedSha256);
    }
  }

  /**
   * The server's pinned prompts and resources against what it lists now, as compare does for tools:
   * a changed definition is quarantined until the lock pins exactly what is listed (then the pin is
   * taken, and agents see the new definition).
   */
  private async compareCatalog(server: string, listed: UpstreamCatalog): Promise<void> {
    const config = this.config.mcpServers.get(server);
    if (!config) return;
    this.reloadLock();
    const sides: Array<{
      kind: CatalogKind;
      pins?: Map<string, McpPin<object>>;
      found: (id: string) => string | undefined;
      locked: Record<string, McpPin<object>>;
    }> = [
      {
        kind: 'prompt',
        pins: config.prompts?.pinned,
        found: (id) =>
          shaOf(
            listed.prompts.find((p) => p.name === id),
            pinnedPrompt,
          ),
        locked: this.lock?.prompts ?? {},
      },
      {
        kind: 'resource',
        pins: config.resources?.pinned,
        found: (id) =>
          shaOf(
            listed.resources.find((r) => r.uri === id),
            pinnedResource,
          ),
        locked: this.lock?.resources ?? {},
      },
    ];
    for (const { kind, pins, found, locked } of sides) {
      for (const [id, pin] of pins ?? []) {
        const key = catalogKey(server, id);
        const before = this.catalogStates.get(`${kind}:${key}`)!;
        const listedSha256 = found(id);
        const relocked = locked[key];
        if (listedSha256 !== undefined && listedSha256 !== pin.sha256 && relocked?.sha256 === listedSha256) {
          pins!.set(id, { sha256: relocked.sha256, definition: relocked.definition });
          this.catalogStates.set(`${kind}:${key}`, 'pinned');
          await this.reportCatalog(config, kind, id, 'repinned', relocked.sha256, listedSha256);
          continue;
        }
        if (before === 'changed') continue;
        const now: PinState = listedSha256 === undefined ? 'vanished' : listedSha256 === pin.sha256 ? 'pinned' : 'changed';
        this.catalogStates.set(`${kind}:${key}`, now);
        if (now === before || (before === 'unlisted' && now === 'pinned')) continue;
        await this.reportCatalog(config, kind, id, now, pin.sha256, listedSha256);
      }
    }
  }

  private async reportCatalog(
    server: McpServerConfig,
    kind: CatalogKind,
    id: string,
    now: Exclude<PinState, 'unlisted'> | 'repinned',
    pinnedSha256: string,
    listedSha256: string | undefined,
  ): Promise<void> {
    const what =
      now === 'changed'
        ? `changed its definition: quarantined (403 ${kind}_definition_changed) until it is reviewed and re-pinned with npm run mcp:pin`
        : now === 'vanished'
          ? `is no longer listed: answers 503 tool_unavailable`
          : `is available${now === 'repinned' ? ', with its new pin' : ''}`;
    const line = `MCP server "${server.name}", ${kind} "${id}": ${what}`;
    if (now === 'pinned' || now === 'repinned') this.logger.log(line);
    else this.logger.warn(line);
    this.metrics.upstreamToolChanged(server.name);
    const status = now === 'repinned' ? REPINNED.status : CHANGE[now].status;
    try {
      await this.audit.append({
        audit_id: newAuditId(),
        event: 'upstream_change',
        tool: kind === 'prompt' ? 'prompts/get' : 'resources/read',
        status,
        reason_code: now === 'changed' ? `${kind}_definition_changed` : now === 'repinned' ? REPINNED.reason_code : CHANGE[now].reason_code,
        upstream: { server: server.name, tool: id, pinned_sha256: pinnedSha256, ...(listedSha256 && { listed_sha256: listedSha256 }) },
      });
    } catch {
      this.logger.error(`The upstream_change record for ${kind} "${id}" could not be written to the audit log`);
    }
  }

  /** A quarantined tool that the lock file pins anew, but not as its server lists it now: it stays quarantined, and the operator is told once. */
  private reportMismatchedPin(tool: Tool, listedSha256: string | undefined): void {
    const entry = this.lock?.tools[tool.name];
    if (!entry || entry.sha256 === tool.mcp!.pinned.sha256 || entry.sha256 === listedSha256 || this.mismatchedPins.get(tool.name) === entry.sha256) return;
    this.mismatchedPins.set(tool.name, entry.sha256);
    this.logger.warn(
      `tool "${tool.name}" is pinned anew in ${this.config.lockFile} (sha256 ${entry.sha256.slice(0, 12)}…), but its server lists ${listedSha256 ? `another definition (sha256 ${listedSha256.slice(0, 12)}…)` : 'no such tool'}: it stays quarantined (run npm run mcp:pin -- --check)`,
    );
  }

  /** The lock file's identity now (size, modification time, inode): read again only when it differs. */
  private stampOfLock(): string {
    try {
      const stat = statSync(this.config.lockFile);
      return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    } catch {
      return 'absent';
    }
  }

  /** Reads mcp-lock.json again if it changed since the gateway last looked; a broken one is logged and ignored. */
  private reloadLock(): void {
    const stamp = this.stampOfLock();
    if (stamp === this.lockStamp) return;
    this.lockStamp = stamp;
    try {
      this.lock = readMcpLock(this.config.lockFile);
    } catch (err) {
      this.lock = undefined;
      const problem = err instanceof McpLockProblem ? `${err.at}: ${err.message}` : 'cannot be read';
      this.logger.warn(`${this.config.lockFile} changed but cannot be used (${problem}): quarantined tools stay quarantined`);
    }
  }

  /**
   * If the lock read while running pins `tool` anew (same server and upstream tool) with exactly the
   * definition listed now, the tool takes that pin: its description and input schema where they
   * came from the pin (not from gateway.yaml), its argument validator, its output schema, its hints.
   * False (nothing changed) when there is no such pin, or its schemas do not compile.
   */
  private repin(tool: Tool, listedSha256: string): boolean {
    const entry: McpLockEntry | undefined = this.lock?.tools[tool.name];
    const mcp = tool.mcp!;
    if (!entry || entry.sha256 !== listedSha256 || entry.server !== mcp.server || entry.tool !== mcp.tool) return false;
    const old = mcp.pinned.definition;
    const next = entry.definition;
    const fromPin = tool.input_schema === old.inputSchema;
    let validateArguments, validateOutput;
    try {
      if (fromPin) validateArguments = compileUpstreamSchema(next.inputSchema);
      if (next.outputSchema) validateOutput = compileUpstreamSchema(next.outputSchema);
    } catch (err) {
      this.logger.warn(`tool "${tool.name}": the schema re-pinned in the lock file does not compile (${(err as Error).message}): it stays quarantined`);
      return false;
    }
    if (fromPin && next.inputSchema.type !== 'object') {
      this.logger.warn(`tool "${tool.name}": the inputSchema re-pinned in the lock file is not of type object: it stays quarantined`);
      return false;
    }
    // In place: the registry, the policy and both doors read these fields of the one Tool object.
    if (tool.description === (old.description ?? '')) tool.description = next.description ?? '';
    if (fromPin) {
      tool.input_schema = next.inputSchema;
      tool.validateArguments = validateArguments!;
      tool.compileListingAllErrors = () => compileUpstreamSchema(next.inputSchema, true);
    }
    mcp.validateOutput = validateOutput;
    mcp.pinned = { sha256: entry.sha256, definition: next };
    return true;
  }

  private async report(tool: Tool, now: Exclude<PinState, 'unlisted'> | 'repinned', listedSha256: string | undefined): Promise<void> {
    const { server, tool: upstream, pinned } = tool.mcp!;
    const what =
      now === 'changed'
        ? `changed its definition (pinned sha256 ${pinned.sha256.slice(0, 12)}…, now ${listedSha256!.slice(0, 12)}…): tool "${tool.name}" is quarantined (403 tool_definition_changed) until it is reviewed and re-pinned with npm run mcp:pin`
        : now === 'vanished'
          ? `no longer lists it: tool "${tool.name}" answers 503 tool_unavailable`
          : now === 'repinned'
            ? `lists it as re-pinned in the lock file (sha256 ${pinned.sha256.slice(0, 12)}…): tool "${tool.name}" uses the new pin and is available`
            : `lists it again, as pinned: tool "${tool.name}" is available`;
    if (now === 'pinned' || now === 'repinned') this.logger.log(`MCP server "${server}", tool "${upstream}": ${what}`);
    else this.logger.warn(`MCP server "${server}", tool "${upstream}": ${what}`);
    this.metrics.upstreamToolChanged(server);
    try {
      await this.audit.append({
        audit_id: newAuditId(),
        event: 'upstream_change',
        tool: tool.name,
        ...(now === 'repinned' ? REPINNED : CHANGE[now]),
        upstream: { server, tool: upstream, pinned_sha256: pinned.sha256, ...(listedSha256 && { listed_sha256: listedSha256 }) },
      });
    } catch {
      this.logger.error(`The upstream_change record for tool "${tool.name}" could not be written to the audit log`);
    }
  }
}

function shaOf<T>(listed: T | undefined, pinned: (listed: T) => object): string | undefined {
  return listed === undefined ? undefined : definitionSha256(pinned(listed));
}

/** A result passed on only within MAX_RESULT_BYTES (as JSON). */
function capped(result: Record<string, unknown>): Record<string, unknown> {
  if (Buffer.byteLength(JSON.stringify(result)) > MAX_RESULT_BYTES) throw new ToolFailed('Upstream result is larger than 1 MiB');
  return result;
}
