import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { sha256Hex } from '../../core/hashing';
import type { McpPin, McpPromptDefinition, McpResourceDefinition, McpToolDefinition } from './mcp-tool';

/** The lock file's name; it lives beside the config file; npm run mcp:pin writes it. */
export const MCP_LOCK_FILE = 'mcp-lock.json';

/** One declared mcp tool as pinned: which upstream tool, its definition, and the SHA-256 of that definition's canonical JSON. */
export interface McpLockEntry {
  server: string;
  tool: string;
  sha256: string;
  definition: McpToolDefinition;
}

/** A federated prompt or resource as pinned: its server, its definition and that definition's SHA-256. */
export interface McpCatalogEntry<D> extends McpPin<D> {
  server: string;
}

/** mcp-lock.json: the pins of tools, by gateway tool name; of prompts and resources, by catalogKey. */
export interface McpLock {
  version: 1;
  tools: Record<string, McpLockEntry>;
  prompts?: Record<string, McpCatalogEntry<McpPromptDefinition>>;
  resources?: Record<string, McpCatalogEntry<McpResourceDefinition>>;
}

/** The lock's key of a server's prompt (by name) or resource (by uri): `server/id` (server names hold no '/'). */
export function catalogKey(server: string, id: string): string {
  return `${server}/${id}`;
}

export function mcpLockPath(configFile: string): string {
  return join(dirname(configFile), MCP_LOCK_FILE);
}

/** JSON with object keys sorted at every depth and no whitespace: the same definition always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** What is pinned of an upstream tool: the fields an agent or a model acts on, nothing the server adds around them. */
export function pinnedDefinition(tool: { name: string } & Record<string, unknown>): McpToolDefinition {
  const definition: Record<string, unknown> = { name: tool.name };
  for (const field of ['title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const) {
    if (tool[field] !== undefined) definition[field] = tool[field];
  }
  return definition as unknown as McpToolDefinition;
}

/** What is pinned of an upstream prompt: its name, title, description and arguments. */
export function pinnedPrompt(prompt: { name: string } & Record<string, unknown>): McpPromptDefinition {
  return pick(prompt, ['title', 'description', 'arguments'], { name: prompt.name });
}

/** What is pinned of an upstream resource: the metadata that stays put (not its size, nor annotations such as lastModified). */
export function pinnedResource(resource: { uri: string; name: string } & Record<string, unknown>): McpResourceDefinition {
  return pick(resource, ['title', 'description', 'mimeType'], { uri: resource.uri, name: resource.name });
}

function pick<T extends object>(from: Record<string, unknown>, fields: readonly string[], into: T): T {
  for (const field of fields) if (from[field] !== undefined) (into as Record<string, unknown>)[field] = from[field];
  return into;
}

export function definitionSha256(definition: object): string {
  return sha256Hex(canonicalJson(definition));
}

/** What is wrong with a lock file: where in it (`at`), and the problem. */
export class McpLockProblem extends Error {
  constructor(
    readonly at: string,
    problem: string,
  ) {
    super(problem);
  }
}

/** The lock at `path`; undefined when there is none. Throws McpLockProblem. */
export function readMcpLock(path: string): McpLock | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new McpLockProblem('(file)', `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let lock: McpLock;
  try {
    lock = JSON.parse(text) as McpLock;
  } catch {
    throw new McpLockProblem('(file)', 'not valid JSON (run npm run mcp:pin to write it again)');
  }
  if (lock?.version !== 1 || lock.tools === null || typeof lock.tools !== 'object') throw new McpLockProblem('(file)', 'not an mcp-lock.json of version 1');
  for (const [name, entry] of Object.entries(lock.tools)) {
    const definition = entry?.definition;
    if (typeof entry?.server !== 'string' || typeof entry.tool !== 'string' || typeof definition?.inputSchema !== 'object' || definition.inputSchema === null) {
      throw new McpLockProblem(`tools.${name}`, 'not a pinned tool (server, tool, sha256, definition with inputSchema)');
    }
    if (definitionSha256(definition) !== entry.sha256)
      throw new McpLockProblem(`tools.${name}`, 'sha256 does not match the definition (edited by hand?): run npm run mcp:pin');
  }
  for (const [section, id] of [
    ['prompts', 'name'],
    ['resources', 'uri'],
  ] as const) {
    const entries = lock[section] as Record<string, McpCatalogEntry<Record<string, unknown>> | null> | undefined | null;
    if (entries === undefined) continue;
    if (entries === null || typeof entries !== 'object') throw new McpLockProblem(section, 'not an object');
    for (const [key, entry] of Object.entries(entries)) {
      if (typeof entry?.server !== 'string' || typeof entry.definition?.[id] !== 'string' || key !== catalogKey(entry.server, entry.definition[id]))
        throw new McpLockProblem(`${section}.${key}`, `not a pinned ${section === 'prompts' ? 'prompt' : 'resource'} (server, sha256, definition with ${id})`);
      if (definitionSha256(entry.definition) !== entry.sha256)
        throw new McpLockProblem(`${section}.${key}`, 'sha256 does not match the definition (edited by hand?): run npm run mcp:pin');
    }
  }
  return lock;
}

/** Writes the lock whole (a temp file renamed over it), keys sorted, so it diffs well under version control. */
export function writeMcpLock(path: string, lock: McpLock): void {
  const sort = <T>(entries: Record<string, T>) => Object.fromEntries(Object.entries(entries).sort(([a], [b]) => (a < b ? -1 : 1)));
  const sorted: McpLock = { version: 1, tools: sort(lock.tools) };
  if (Object.keys(lock.prompts ?? {}).length > 0) sorted.prompts = sort(lock.prompts!);
  if (Object.keys(lock.resources ?? {}).length > 0) sorted.resources = sort(lock.resources!);
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(sorted, null, 2)}\n`);
  renameSync(temp, path);
}
