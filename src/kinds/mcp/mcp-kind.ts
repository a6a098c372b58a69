import { Injectable } from '@nestjs/common';
import { AuditLog } from '../../audit/audit-log.service';
import { GatewayConfig } from '../../config/gateway-config';
import { GatewayMetrics } from '../../metrics/gateway-metrics';
import { SecretStore } from '../../secrets/secret-store';
import type { ToolArguments, ToolHints, ToolKind, ToolPreview, ToolResult } from '../tool-kind';
import { previewMcpCall } from './mcp-preview';
import { mcpUpstreamsConfig, type McpTool } from './mcp-tool';
import { McpUpstreams } from './mcp-upstreams';

/** `kind: mcp`: tools of upstream MCP servers, each checked against its pin (quarantined when it changed). */
@Injectable()
export class McpKind implements ToolKind<McpTool> {
  readonly kinds = ['mcp'] as const;
  private readonly upstreams: McpUpstreams;

  constructor(config: GatewayConfig, secrets: SecretStore, audit: AuditLog, metrics: GatewayMetrics) {
    this.upstreams = new McpUpstreams(mcpUpstreamsConfig(config), secrets, audit, metrics);
  }

  /** Quarantined → 403, not listed (yet, or any more) → 503. */
  preflight(tool: McpTool): void {
    this.upstreams.check(tool);
  }

  execute(tool: McpTool, args: ToolArguments, signal: AbortSignal): Promise<ToolResult> {
    return this.upstreams.call(tool, args, signal);
  }

  preview(tool: McpTool, args: ToolArguments): Promise<ToolPreview> {
    return Promise.resolve(previewMcpCall(tool, args));
  }

  hints(): ToolHints {
    return { readOnlyHint: false, destructiveHint: true, openWorldHint: true };
  }

  /** Connects the upstream servers (starting stdio ones), waiting a few seconds at most for their first listings. */
  start(): Promise<void> {
    return this.upstreams.start();
  }

  close(): Promise<void> {
    return this.upstreams.close();
  }
}
