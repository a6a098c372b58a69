import { Injectable } from '@nestjs/common';
import { ConfigSwaps } from '../config/config-reload';
import { GatewayConfig, Tool } from '../config/gateway-config';
import type { McpResult, ToolHints, ToolListing, ToolResult } from '../kinds/tool-kind';
import { ToolKinds } from '../kinds/tool-kinds';

export type { McpResult, ToolHints, ToolListing } from '../kinds/tool-kind';

/** What an agent may learn of a tool (GET /api/tools, MCP tools/list): never its hosts, secrets, request template or upstream. */
export interface ToolDefinition {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
  requires_approval: boolean;
  timeout_ms: number;
}

/** A tool as both doors show it: GET /api/tools lists `definition`, tools/list adds `hints` and `listing` (a title, an outputSchema). */
export interface VisibleTool {
  definition: ToolDefinition;
  hints: ToolHints;
  listing: ToolListing;
}

/**
 * The registered tools. Each input_schema was compiled once when the config was loaded, so an
 * invalid schema is a config error and no call compiles anything. The lists by role follow a
 * live reload (ConfigSwaps): built for the new config first, then swapped in with it.
 */
@Injectable()
export class ToolRegistry {
  private byRole: ReadonlyMap<string, readonly VisibleTool[]>;

  constructor(
    private readonly config: GatewayConfig,
    private readonly kinds: ToolKinds,
    swaps: ConfigSwaps,
  ) {
    this.byRole = this.listsByRole(config);
    swaps.follow((next) => {
      const byRole = this.listsByRole(next);
      return () => (this.byRole = byRole);
    });
  }

  /** Exact name match: no case folding, no trimming. */
  get(name: string): Tool | undefined {
    return this.config.tools.get(name);
  }

  /** The tools a role may use, in name order, as agents see them. */
  visibleTo(role: string): readonly VisibleTool[] {
    return this.byRole.get(role) ?? [];
  }

  private listsByRole(config: GatewayConfig): ReadonlyMap<string, readonly VisibleTool[]> {
    const sorted = [...config.tools.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const visible = (tool: Tool) => visibleTool(tool, this.kinds.of(tool));
    return new Map(Object.keys(config.roles).map((role) => [role, sorted.filter((tool) => tool.roles.includes(role)).map(visible)]));
  }

  /**
   * An executed result of tool `name` in MCP's own shape, where its kind has one (an upstream MCP
   * tool's content items and structuredContent); undefined: the MCP door shows it as JSON.
   */
  mcpResultOf(name: string, result: ToolResult): McpResult | undefined {
    const tool = this.get(name);
    return tool && this.kinds.of(tool).toMcpResult?.(tool, result);
  }

  /** Whether tools/list shows tool `name` with an outputSchema (then every result's structuredContent must match it). */
  hasOutputSchema(name: string): boolean {
    const tool = this.get(name);
    return tool !== undefined && this.kinds.of(tool).listing?.(tool).outputSchema !== undefined;
  }
}

/**
 * `hints`: what the tool does to the world, as its kind says (MCP's tool annotations). Read from the
 * tool at each listing: an mcp tool re-pinned while the gateway runs shows its new definition.
 */
function visibleTool(tool: Tool, kind: ReturnType<ToolKinds['of']>): VisibleTool {
  return {
    definition: {
      name: tool.name,
      get description() {
        return tool.description;
      },
      get input_schema() {
        return tool.input_schema;
      },
      requires_approval: tool.requires_approval,
      timeout_ms: tool.timeout_ms,
    },
    get hints(): ToolHints {
      return kind.hints(tool);
    },
    get listing(): ToolListing {
      return kind.listing?.(tool) ?? {};
    },
  };
}
