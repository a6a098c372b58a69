import { Logger } from '@nestjs/common';
import type { CallToolResult, Progress } from '@modelcontextprotocol/client';
import type { AuditLog } from '../../audit/audit-log.service';
import { GatewayError, PolicyDenied, ToolFailed } from '../../core/errors';
import { newAuditId } from '../../core/ids';
import type { Tool } from '../../config/gateway-config';
import type { McpUpstreamsConfig as GatewayConfig } from './mcp-tool';
import type { GatewayMetrics } from '../../metrics/gateway-metrics';
import type { SecretStore } from '../../secrets/secret-store';
import { McpConnection, type UpstreamListing } from './mcp-connection';
import { EgressPools } from '../egress/egress';
import { definitionSha256, pinnedDefinition } from './mcp-lock';

/** 503: the tool's upstream has not answered since start, or no longer offers the tool (tool_unavailable). */
export class ToolUnavailable extends GatewayError {
  constructor(message: string) {
    super(503, 'tool_unavailable', 'tool_unavailable', message);
  }
}

/**
 * What the gateway knows of a declared tool's upstream definition: not listed yet (its server has
 * not answered since start), as pinned, gone from the listing, or changed (quarantined: sticky
 * until it is re-pinned and the gateway restarted, whatever the upstream does meanwhile).
 */
type PinState = 'unlisted' | 'pinned' | 'vanished' | 'changed';

const CHANGE: Record<Exclude<PinState, 'unlisted'>, { status: string; reason_code: string }> = {
  changed: { status: 'quarantined', reason_code: 'tool_definition_changed' },
  vanished: { status: 'unavailable', reason_code: 'tool_unavailable' },
  pinned: { status: 'available', reason_code: 'tool_available' },
};

/** How long start-up waits for the servers' first listings before it goes on without the slow ones. */
export const STARTUP_WAIT_MS = 5000;
const MAX_RESULT_BYTES = 1024 * 1024;
const MAX_ERROR_TEXT = 500;

/**
 * The `mcp` tool kind (README "Upstream MCP servers"): one connection per upstream server that has declared tools
 * (a stdio server's process is started with the gateway), the declared tools' definitions checked
 * against their pins at every listing (start, reconnection, every settings.mcp_resync_s), and the
 * calls. Each change of a pinned tool leaves an `upstream_change` audit record, a warning and a
 * metric; none of it touches readiness, so one bad upstream never takes the gateway down.
 */
export class McpUpstreams {
  private readonly logger = new Logger('McpUpstreams');
  private readonly dispatchers = new EgressPools();
  private readonly connections = new Map<string, McpConnection>();
  private readonly declared = new Map<string, Tool[]>();
  private readonly states = new Map<string, PinState>();
  private resyncTimer?: NodeJS.Timeout;
  private resyncing?: Promise<void>;

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
    };
    for (const server of config.mcpServers.values()) {
      if (this.declared.has(server.name)) this.connections.set(server.name, new McpConnection(server, deps));
      else this.logger.log(`MCP server "${server.name}" has no tool declared under tools: not connected`);
    }
  }

  /**
   * Connects every server (starting stdio processes), waiting at most `waitMs` for their first
   * listings: a server slower than that, or hanging, goes on connecting in the background and
   * its tools answer 503 until it has listed them. Then resyncs every settings.mcp_resync_s.
   */
  async start(waitMs = STARTUP_WAIT_MS): Promise<void> {
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
          `The upstream definition of tool "${tool.name}" changed since it was pinned; it is quarantined until an operator reviews it, re-pins it (npm run mcp:pin) and restarts the gateway`,
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
        .slice(0, MAX_ERROR_TEXT);
      throw new ToolFailed(`Upstream tool "${upstream}" reported an error${text ? `: ${text}` : ''}`);
    }
    if (validateOutput) {
      if (result.structuredContent === undefined)
        throw new ToolFailed(`Upstream tool "${upstream}" returned no structuredContent, though its pinned outputSchema asks for one`);
      if (!validateOutput(result.structuredContent)) {
        const first = validateOutput.errors?.[0];
        const where = first ? ` (${first.instancePath || '/'} ${first.message ?? ''})`.slice(0, MAX_ERROR_TEXT) : '';
        throw new ToolFailed(`Upstream tool "${upstream}" returned structuredContent that does not match its pinned outputSchema${where}`);
      }
    }
    const out = { content: result.content, ...(result.structuredContent !== undefined && { structuredContent: result.structuredContent }), isError: false };
    if (Buffer.byteLength(JSON.stringify(out)) > MAX_RESULT_BYTES) throw new ToolFailed('Upstream result is larger than 1 MiB');
    return out;
  }

  async close(): Promise<void> {
    clearInterval(this.resyncTimer);
    await Promise.all([...this.connections.values()].map((connection) => connection.close()));
    await this.dispatchers.close();
  }

  /** The declared tools of `server` against what it lists now. */
  private async compare(server: string, listed: UpstreamListing): Promise<void> {
    const byName = new Map(listed.map((definition) => [definition.name, definition]));
    for (const tool of this.declared.get(server) ?? []) {
      const before = this.states.get(tool.name)!;
      if (before === 'changed') continue;
      const found = byName.get(tool.mcp!.tool);
      const listedSha256 = found && definitionSha256(pinnedDefinition(found));
      const now: PinState = !found ? 'vanished' : listedSha256 === tool.mcp!.pinned.sha256 ? 'pinned' : 'changed';
      this.states.set(tool.name, now);
      if (now === before || (before === 'unlisted' && now === 'pinned')) continue;
      await this.report(tool, now, listedSha256);
    }
  }

  private async report(tool: Tool, now: Exclude<PinState, 'unlisted'>, listedSha256: string | undefined): Promise<void> {
    const { server, tool: upstream, pinned } = tool.mcp!;
    const what =
      now === 'changed'
        ? `changed its definition (pinned sha256 ${pinned.sha256.slice(0, 12)}…, now ${listedSha256!.slice(0, 12)}…): tool "${tool.name}" is quarantined (403 tool_definition_changed) until it is re-pinned with npm run mcp:pin and the gateway restarted`
        : now === 'vanished'
          ? `no longer lists it: tool "${tool.name}" answers 503 tool_unavailable`
          : `lists it again, as pinned: tool "${tool.name}" is available`;
    if (now === 'pinned') this.logger.log(`MCP server "${server}", tool "${upstream}": ${what}`);
    else this.logger.warn(`MCP server "${server}", tool "${upstream}": ${what}`);
    this.metrics.upstreamToolChanged(server);
    try {
      await this.audit.append({
        audit_id: newAuditId(),
        event: 'upstream_change',
        tool: tool.name,
        ...CHANGE[now],
        upstream: { server, tool: upstream, pinned_sha256: pinned.sha256, ...(listedSha256 && { listed_sha256: listedSha256 }) },
      });
    } catch {
      this.logger.error(`The upstream_change record for tool "${tool.name}" could not be written to the audit log`);
    }
  }
}
