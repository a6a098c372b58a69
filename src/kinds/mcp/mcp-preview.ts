import type { ToolArguments, ToolPreview } from '../tool-kind';
import type { McpTool } from './mcp-tool';

/** The approval preview of a call to another MCP server's tool: which server and tool, and the arguments it would get. */
export function previewMcpCall(tool: McpTool, args: ToolArguments): ToolPreview {
  return { kind: tool.kind, server: tool.mcp.server, upstream_tool: tool.mcp.tool, arguments: args, warnings: [] };
}
