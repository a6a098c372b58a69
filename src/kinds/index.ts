import type { ToolKindConfig } from '../config/tool-kind-config';
import { fsToolConfig } from './fs/fs-config';
import { FsKind } from './fs/fs-kind';
import { httpToolConfig } from './http/http-config';
import { HttpKind } from './http/http-kind';
import { mcpToolConfig } from './mcp/mcp-config';
import { McpKind } from './mcp/mcp-kind';
import type { ToolKindPlugin } from './tool-kind';

/** Every tool kind the gateway knows, each registered here and nowhere else: how its entries are read, and what runs them. */
export const TOOL_KIND_PLUGINS: readonly ToolKindPlugin[] = [
  { config: fsToolConfig, runtime: FsKind },
  { config: httpToolConfig, runtime: HttpKind },
  { config: mcpToolConfig, runtime: McpKind },
];

/** What loadGatewayConfig is given: the registered kinds' config parts. */
export const KIND_CONFIGS: readonly ToolKindConfig[] = TOOL_KIND_PLUGINS.map((kind) => kind.config);
