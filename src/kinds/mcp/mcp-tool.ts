import type { ValidateFunction } from 'ajv';
import type { GatewayConfig, Settings, Tool, ToolCommon } from '../../config/gateway-config';
import { mcpLockPath } from './mcp-lock';

/** An upstream MCP server: Streamable HTTP, or a stdio process the gateway starts (argv, no shell); and what of it is federated besides tools. */
export type McpServerConfig = McpFederated &
  (
    | {
        name: string;
        transport: 'http';
        url: string;
        /** Values may hold `${secret:NAME}`, resolved at each request. */
        headers: Record<string, string>;
        /** Canonical host names or IP literals; the url's host is one of them. */
        allowed_hosts: string[];
        allow_private_networks: boolean;
        timeout_ms: number;
      }
    | {
        name: string;
        transport: 'stdio';
        command: string[];
        /** The child's environment besides PATH, HOME and the like; values may hold `${secret:NAME}`, resolved when it starts. */
        env: Record<string, string>;
        cwd?: string;
        timeout_ms: number;
      }
  );

/** An upstream prompt's definition as pinned in mcp-lock.json: what agents see of it. */
export interface McpPromptDefinition {
  name: string;
  title?: string;
  description?: string;
  arguments?: Array<{ name: string; title?: string; description?: string; required?: boolean }>;
}

/** An upstream resource's metadata as pinned in mcp-lock.json (the fields that do not change from one listing to the next). */
export interface McpResourceDefinition {
  uri: string;
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
}

/** A pinned definition and the SHA-256 of its canonical JSON. */
export interface McpPin<D> {
  sha256: string;
  definition: D;
}

/**
 * What of a server's resources and prompts its mcp_servers entry offers (nothing unless declared),
 * to which roles, and the pins of mcp-lock.json that agents see listed (by uri, by name).
 */
export interface McpFederated {
  resources?: { roles: string[]; uris: string[]; pinned: Map<string, McpPin<McpResourceDefinition>> };
  prompts?: { roles: string[]; names: string[]; pinned: Map<string, McpPin<McpPromptDefinition>> };
}

/** An upstream tool's definition as pinned in mcp-lock.json: what agents see of it. */
export interface McpToolDefinition {
  name: string;
  title?: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

/** An mcp tool's upstream: the server, the upstream's own tool name, and the pinned definition with its SHA-256. */
export interface McpToolBinding {
  server: string;
  tool: string;
  pinned: { sha256: string; definition: McpToolDefinition };
  /** The pinned outputSchema, compiled once when the config is loaded: every structuredContent is checked against it. */
  validateOutput?: ValidateFunction;
}

/** The hints (MCP tool annotations) an operator sets on an mcp tool in gateway.yaml, over the upstream's pinned ones. */
export interface McpHintOverrides {
  title?: string;
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

/** A `kind: mcp` tool: a tool of an upstream MCP server, as pinned. */
export interface McpTool extends ToolCommon {
  kind: 'mcp';
  mcp: McpToolBinding;
  /** gateway.yaml's `annotations:` of the tool: the gateway, the trusted party, has the last word on hints. */
  annotations?: McpHintOverrides;
}

declare module '../../config/gateway-config' {
  interface ToolTypes {
    mcp: McpTool;
  }
  interface Settings {
    /** How often each upstream MCP server's tools are listed again and compared with their pins. */
    mcp_resync_s: number;
  }
  interface ConfigSections {
    mcp: McpSection;
  }
}

/** What the mcp kind keeps of a loaded config besides its tools: mcp_servers, by name. */
export interface McpSection {
  readonly servers: ReadonlyMap<string, McpServerConfig>;
}

/** mcp_servers, by name. */
export function mcpServersOf(config: GatewayConfig): ReadonlyMap<string, McpServerConfig> {
  return config.sections.mcp?.servers ?? new Map();
}

/** What McpUpstreams reads of the configuration. */
export interface McpUpstreamsConfig {
  settings: Settings;
  tools: ReadonlyMap<string, Tool>;
  mcpServers: ReadonlyMap<string, McpServerConfig>;
  /** mcp-lock.json beside the config: read again while running, so a re-pin lifts a quarantine without a restart. */
  lockFile: string;
}

export function mcpUpstreamsConfig(config: GatewayConfig): McpUpstreamsConfig {
  return { settings: config.settings, tools: config.tools, mcpServers: mcpServersOf(config), lockFile: mcpLockPath(config.source) };
}
