import type { Type } from '@nestjs/common';
import type { Tool } from '../config/gateway-config';
import type { ToolKindConfig } from '../config/tool-kind-config';

export type ToolArguments = Record<string, unknown>;
export type ToolResult = Record<string, unknown>;

/** What a tool does to the world, by its kind (MCP's tool annotations). */
export interface ToolHints {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  openWorldHint: boolean;
}

/** What approving a call would do, computed now and read-only: the kind's own fields, and what the call would meet. */
export interface ToolPreview {
  kind: string;
  warnings: Array<{ code: string; message: string }>;
  [field: string]: unknown;
}

/**
 * A tool kind at run time: the one place that knows how its tools are checked and run. The
 * executor, the registry and the policy ask it; none of them asks which kind a tool is.
 */
export interface ToolKind<T extends Tool = Tool> {
  /** The `kind:` values it runs. */
  readonly kinds: readonly T['kind'][];
  /** Its own checks (paths, hosts, an upstream's pin), before approval is asked and before anything runs; throws the refusal. */
  preflight(tool: T, args: ToolArguments): void;
  /** Runs the call; `signal` aborts when its time is up. Timeout, secret scrubbing and metrics are the executor's. */
  execute(tool: T, args: ToolArguments, signal: AbortSignal): Promise<ToolResult>;
  /** How MCP clients see its tools. */
  hints(tool: T): ToolHints;
  /** The approval preview of a call (not yet asked: the approval preview still builds its own). */
  preview?(tool: T, args: ToolArguments): Promise<ToolPreview>;
  /** Before the gateway serves (connections, sweeps). */
  start?(): Promise<void>;
  /** When it stops. */
  close?(): Promise<void>;
}

/** The Nest token of every registered ToolKind, as an array (one multi-provider, built in KindsModule). */
export const TOOL_KINDS = Symbol('TOOL_KINDS');

/** One tool kind as registered: how gateway.yaml's entries are read, and what runs them. */
export interface ToolKindPlugin {
  config: ToolKindConfig;
  runtime: Type<ToolKind>;
}
