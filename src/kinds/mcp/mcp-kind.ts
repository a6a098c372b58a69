import { Injectable } from '@nestjs/common';
import { AuditLog } from '../../audit/audit-log.service';
import { GatewayConfig } from '../../config/gateway-config';
import { GatewayMetrics } from '../../metrics/gateway-metrics';
import { SecretStore } from '../../secrets/secret-store';
import type { McpContentItem, McpResult, ToolArguments, ToolHints, ToolKind, ToolListing, ToolPreview, ToolProgress, ToolResult } from '../tool-kind';
import { previewMcpCall } from './mcp-preview';
import { McpCatalog } from './mcp-catalog';
import { mcpServersOf, mcpUpstreamsConfig, type McpTool } from './mcp-tool';
import { McpUpstreams } from './mcp-upstreams';

const HINTS = ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const;

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
const isContentItem = (value: unknown): value is McpContentItem => isObject(value) && typeof value.type === 'string';

/** `kind: mcp`: tools of upstream MCP servers, each checked against its pin (quarantined when it changed). */
@Injectable()
export class McpKind implements ToolKind<McpTool> {
  readonly kinds = ['mcp'] as const;
  private readonly upstreams: McpUpstreams;
  /** The upstream resources and prompts offered to agents (mcp_servers.*.resources and .prompts). */
  readonly catalog: McpCatalog;

  constructor(config: GatewayConfig, secrets: SecretStore, audit: AuditLog, metrics: GatewayMetrics) {
    this.upstreams = new McpUpstreams(mcpUpstreamsConfig(config), secrets, audit, metrics);
    this.catalog = new McpCatalog(mcpServersOf(config));
  }

  /** A federated resource's contents, as its server sent them (the caller checked the role and uri; secrets are the caller's to scrub). */
  readResource(server: string, uri: string, signal: AbortSignal): Promise<ToolResult> {
    return this.upstreams.readResource(server, uri, signal);
  }

  /** A federated prompt's messages, as its server sent them (the caller checked the role and name; secrets are the caller's to scrub). */
  getPrompt(server: string, name: string, args: Record<string, string>, signal: AbortSignal): Promise<ToolResult> {
    return this.upstreams.getPrompt(server, name, args, signal);
  }

  /** Quarantined → 403, not listed (yet, or any more) → 503. */
  preflight(tool: McpTool): void {
    this.upstreams.check(tool);
  }

  execute(tool: McpTool, args: ToolArguments, signal: AbortSignal, onProgress?: (progress: ToolProgress) => void): Promise<ToolResult> {
    return this.upstreams.call(tool, args, signal, onProgress);
  }

  preview(tool: McpTool, args: ToolArguments): Promise<ToolPreview> {
    return Promise.resolve(previewMcpCall(tool, args));
  }

  /**
   * The upstream's pinned annotations (MCP's defaults where it sets none: it may write, destroy and
   * reach the world), each hint overridden by the tool's `annotations:` in gateway.yaml.
   */
  hints(tool: McpTool): ToolHints {
    const pinned = tool.mcp.pinned.definition.annotations ?? {};
    const hints: ToolHints = { readOnlyHint: false, destructiveHint: true, openWorldHint: true };
    for (const hint of HINTS) if (typeof pinned[hint] === 'boolean') hints[hint] = pinned[hint];
    if (typeof pinned.title === 'string') hints.title = pinned.title;
    return { ...hints, ...tool.annotations };
  }

  /** The pinned title and outputSchema. */
  listing(tool: McpTool): ToolListing {
    const { title, outputSchema } = tool.mcp.pinned.definition;
    return { ...(typeof title === 'string' && { title }), ...(outputSchema && { outputSchema }) };
  }

  /** The upstream's own content items and structuredContent, as executed (scrubbed, checked against the pinned outputSchema). */
  toMcpResult(_tool: McpTool, result: ToolResult): McpResult | undefined {
    const { content, structuredContent } = result;
    if (!Array.isArray(content) || !content.every(isContentItem)) return undefined;
    return { content, ...(isObject(structuredContent) && { structuredContent }) };
  }

  /** Connects the upstream servers (starting stdio ones), waiting a few seconds at most for their first listings. */
  start(): Promise<void> {
    return this.upstreams.start();
  }

  close(): Promise<void> {
    return this.upstreams.close();
  }
}
