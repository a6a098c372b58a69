import type { ValidateFunction } from 'ajv';
import type { RateLimit, SecretSource } from './gateway-config';

export type ConfigFail = (path: string, problem: string) => never;

/** What a tool kind's prepare() and parse() are given. */
export interface KindLoadContext {
  /** The config file, as given (a kind may read a file beside it: mcp-lock.json). */
  file: string;
  /** The declared secrets: every `${secret:NAME}` a kind accepts names one of them. */
  secrets: Readonly<Record<string, SecretSource>>;
  /** Throws the ConfigError for `path`, written from the root of gateway.yaml (`tools.x.request.url`). */
  fail: ConfigFail;
}

/** A tool entry as written under tools:, after the schema filled in its defaults. */
export interface RawToolEntry {
  kind: string;
  description?: string;
  roles: string[];
  requires_approval: boolean;
  /** Absent only where the kind fills it in (an mcp tool: its pinned upstream inputSchema). */
  input_schema?: Record<string, unknown>;
  /** Absent only where the kind fills it in (an mcp tool: its server's). */
  timeout_ms?: number;
  forbidden_fields?: string[];
  rate_limit?: RateLimit;
  [field: string]: unknown;
}

/** An input schema that is not the operator's (an upstream's): where it comes from, for messages, and how it compiles. */
export interface ForeignInputSchema {
  schema: Record<string, unknown>;
  /** Says where the schema is, after the tool's path: `(the inputSchema pinned in mcp-lock.json)`. */
  source: string;
  compile(schema: Record<string, unknown>, allErrors: boolean): ValidateFunction;
}

/** What a tool kind makes of one tool entry. */
export interface ParsedToolEntry<Fields extends object = object> {
  /** The kind's own fields of its Tool member (an http tool's request; an mcp tool's binding). */
  fields: Fields;
  /** What fills a common field the entry left out. */
  defaults?: { description?: string; timeout_ms?: number; input_schema?: ForeignInputSchema };
}

/**
 * How one tool kind reads gateway.yaml: the JSON Schema of its tool entries (and of any top-level
 * section it owns), and the parsing of its own fields. Plain functions, no DI: the config is loaded
 * before Nest starts, and by the CLIs. The loader never asks which kind a tool is; it asks this.
 */
export interface ToolKindConfig<Prepared = unknown> {
  /** The kind's name: where what prepare() returns is kept, in GatewayConfig.sections. */
  name: string;
  /** The `kind:` values it parses. */
  kinds: readonly string[];
  /** JSON Schema of its tool entries, one per `kind:` value, each with `kind: { const }` (see toolEntrySchema). */
  toolSchemas: readonly object[];
  /** JSON Schema of its own settings (under settings:, with their defaults), by key. */
  settings?: Readonly<Record<string, object>>;
  /** JSON Schema of the top-level sections of gateway.yaml it owns (mcp_servers), by key. */
  sections?: Readonly<Record<string, object>>;
  /** Once per load, before any tool entry: reads its sections (the whole document, after the schema). */
  prepare?(raw: Readonly<Record<string, unknown>>, ctx: KindLoadContext): Prepared;
  /** One tool entry of one of its kinds: its own fields, checked (a problem is ctx.fail). */
  parse(name: string, entry: RawToolEntry, ctx: KindLoadContext, prepared: Prepared): ParsedToolEntry;
}
