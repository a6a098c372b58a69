import type { Type } from '@nestjs/common';
import type { Tool } from '../config/gateway-config';
import type { ToolKindConfig } from '../config/tool-kind-config';
import type { GatewayError } from '../core/errors';

export type ToolArguments = Record<string, unknown>;
export type ToolResult = Record<string, unknown>;

/** What a tool does to the world, by its kind (MCP's tool annotations). */
export interface ToolHints {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  openWorldHint: boolean;
  idempotentHint?: boolean;
  /** A human-readable name, as MCP's annotations may carry one. */
  title?: string;
}

/** What MCP's tools/list shows of a tool besides its name, description, input schema and hints. */
export interface ToolListing {
  title?: string;
  /** JSON Schema of the result's structuredContent. */
  outputSchema?: Record<string, unknown>;
}

/** One content item of an MCP tool result (text, image, audio, resource_link, resource), field for field. */
export interface McpContentItem {
  type: string;
  [field: string]: unknown;
}

/** A result in MCP's own CallToolResult shape (not an error), as the MCP door sends it. */
export interface McpResult {
  content: McpContentItem[];
  structuredContent?: Record<string, unknown>;
}

/** A progress report of a running call (MCP's notifications/progress, without the token). */
export interface ToolProgress {
  progress: number;
  total?: number;
  message?: string;
}

/**
 * What a door hands one call besides its arguments: the caller's cancellation (the call is
 * aborted and answered `cancelled`) and where the tool's progress reports go.
 */
export interface CallObserver {
  signal?: AbortSignal;
  onProgress?(progress: ToolProgress): void;
}

/** Text up to this size is shown in an approval preview (a diff, an http body); larger or binary content by size and SHA-256. */
export const PREVIEW_TEXT_MAX_BYTES = 256 * 1024;

/** A check the call would fail at execution, or what the approver should know (`code` names it). */
export interface PreviewWarning {
  code: string;
  message: string;
}

/** Content shown by its size and SHA-256 (null: too large to hash for a preview). */
export interface ContentSummary {
  size: number;
  sha256: string | null;
}

/** A text a preview shows that is not an argument (a file's content): checked for hidden characters line by line. */
export interface PreviewText {
  /** e.g. `current file`: where a finding is, with its line. */
  where: string;
  text: string;
}

/** A text the call would replace: the preview shows it as a unified diff in `diff`. */
export interface PreviewChange {
  /** The name in the diff's header (a path). */
  name: string;
  /** '' for a new one; null when it cannot be shown (binary, or over PREVIEW_TEXT_MAX_BYTES). */
  current: string | null;
  proposed: string | null;
  created: boolean;
}

/**
 * What approving a call would do, computed now and read-only: `kind`, the kind's own fields, and
 * `warnings` (a check the call would fail at execution is a warning, not an error). `shown` and
 * `change` are read by the approval preview and are not part of the answer.
 */
export interface ToolPreview {
  kind: string;
  warnings: PreviewWarning[];
  shown?: PreviewText[];
  change?: PreviewChange;
  [field: string]: unknown;
}

export const previewWarning = (code: string, message: string): PreviewWarning => ({ code, message });

/** A refusal the call would meet, as a warning. */
export const previewRefusal = (err: GatewayError): PreviewWarning => previewWarning(err.reasonCode, `${err.message}: the call would be refused`);

/**
 * A tool kind at run time: the one place that knows how its tools are checked and run. The
 * executor, the registry and the policy ask it; none of them asks which kind a tool is.
 */
export interface ToolKind<T extends Tool = Tool> {
  /** The `kind:` values it runs. */
  readonly kinds: readonly T['kind'][];
  /** Its own checks (paths, hosts, an upstream's pin), before approval is asked and before anything runs; throws the refusal. */
  preflight(tool: T, args: ToolArguments): void;
  /**
   * Runs the call; `signal` aborts when its time is up or the caller cancelled; `onProgress` (when
   * the caller asked for progress) takes the tool's progress reports. Timeout, cancellation, secret
   * scrubbing and metrics are the executor's.
   */
  execute(tool: T, args: ToolArguments, signal: AbortSignal, onProgress?: (progress: ToolProgress) => void): Promise<ToolResult>;
  /** How MCP clients see its tools. */
  hints(tool: T): ToolHints;
  /** A title and output schema MCP clients see, where the kind has them (an upstream's pinned definition). */
  listing?(tool: T): ToolListing;
  /**
   * The result (as executed and scrubbed: the REST door's `result`) in MCP's own shape, for the
   * MCP door; undefined, or no such method: the door sends it as one text block of JSON and as
   * structuredContent.
   */
  toMcpResult?(tool: T, result: ToolResult): McpResult | undefined;
  /**
   * What approving the call would do, read-only (no write, no network, no secret read); a refusal
   * it throws is shown as the preview's one warning.
   */
  preview(tool: T, args: ToolArguments): Promise<ToolPreview>;
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
