import { loadGatewayConfig } from '../../config/config.loader';
import type { Tool } from '../../config/gateway-config';
import { SecretStore } from '../../secrets/secret-store';
import { KIND_CONFIGS } from '../index';
import { mcpKindConfig, mcpToolConfig } from './mcp-config';
import { mcpServersOf } from './mcp-tool';
import { createTwoFilesPatch } from 'diff';
import { connectUpstream, describeError, listUpstreamCatalog, listUpstreamTools, StderrTail, type UpstreamCatalog } from './mcp-connection';
import { EgressPools } from '../egress/egress';
import {
  catalogKey,
  canonicalJson,
  definitionSha256,
  type McpCatalogEntry,
  type McpLock,
  type McpLockEntry,
  mcpLockPath,
  pinnedDefinition,
  pinnedPrompt,
  pinnedResource,
  readMcpLock,
  writeMcpLock,
} from './mcp-lock';
import type { McpPin, McpServerConfig } from './mcp-tool';

export interface PinReport {
  lockFile: string;
  /** True when every server answered and every declared tool was found (only then may the lock be written). */
  complete: boolean;
  /** True when a pin is new or differs from the lock file's. */
  changed: boolean;
  /** True when the lock was written: complete, changed, and not a check. */
  written: boolean;
  /** What was pinned, what changed since the last pin, and what went wrong. */
  lines: string[];
  /** gateway.yaml stubs for upstream tools not declared yet. */
  stubs: string[];
}

type Env = Record<string, string | undefined>;

// Every registered kind (the config's other tools must load too), with mcp tools bound without their pins.
const KINDS_WITHOUT_PINS = KIND_CONFIGS.map((kind) => (kind === mcpToolConfig ? mcpKindConfig('skip') : kind));

/**
 * npm run mcp:pin: connects to each server of mcp_servers, lists its tools, and pins
 * every declared mcp tool's definition in mcp-lock.json beside the config. Nothing is written
 * unless every server answered and every declared tool was found: a lock is never half new.
 */
export async function pinMcpTools(env: Env, options: { check?: boolean } = {}): Promise<PinReport> {
  const config = loadGatewayConfig(env, { kinds: KINDS_WITHOUT_PINS });
  const lockFile = mcpLockPath(config.source);
  const previous = readPrevious(lockFile);
  const secrets = new SecretStore(config);
  const dispatchers = new EgressPools();
  const lock: McpLock = { version: 1, tools: {}, prompts: {}, resources: {} };
  const lines: string[] = [];
  const stubs: string[] = [];
  let complete = true;
  let changed = false;
  const declared = [...config.tools.values()].filter((tool) => tool.mcp);
  try {
    for (const server of mcpServersOf(config).values()) {
      let listed, catalog: UpstreamCatalog;
      const stderr = new StderrTail(secrets);
      try {
        const client = await connectUpstream(server, secrets, dispatchers, { onStderrLine: (line) => stderr.push(line) });
        try {
          listed = await listUpstreamTools(client, server.timeout_ms);
          catalog = await listUpstreamCatalog(client, server);
        } finally {
          await client.close();
        }
      } catch (err) {
        lines.push(`mcp_servers.${server.name}: cannot connect: ${describeError(err)}`);
        const said = stderr.text;
        if (said.length > 0) lines.push(`  its last stderr lines (secrets scrubbed):`, ...said.map((line) => `  | ${line}`));
        complete = false;
        continue;
      }
      const ours = declared.filter((tool) => tool.mcp!.server === server.name);
      for (const tool of ours) {
        const found = listed.find((definition) => definition.name === tool.mcp!.tool);
        if (!found) {
          lines.push(
            `tools.${tool.name}: server "${server.name}" lists no tool "${tool.mcp!.tool}" (it lists: ${listed.map((t) => t.name).join(', ') || 'nothing'})`,
          );
          complete = false;
          continue;
        }
        const definition = pinnedDefinition(found);
        const entry: McpLockEntry = { server: server.name, tool: found.name, sha256: definitionSha256(definition), definition };
        lock.tools[tool.name] = entry;
        const before = previous?.tools[tool.name];
        const comparison = compareWith(before, entry, FIELDS, before?.server === entry.server && before.tool === entry.tool);
        changed ||= comparison !== UNCHANGED;
        lines.push(`tools.${tool.name}: ${server.name}/${found.name} ${comparison}`);
        if (tool.roles.length === 0) lines.push(`  warning: tools.${tool.name} has roles: [], so no agent can call it (add the roles that may)`);
        if (comparison !== UNCHANGED && before) lines.push(...fieldDiffs(before, entry, FIELDS));
      }
      const pinned = pinCatalog(server, catalog, previous, lock);
      lines.push(...pinned.lines);
      complete &&= pinned.complete;
      changed ||= pinned.changed;
      const undeclared = listed.filter((definition) => !ours.some((tool) => tool.mcp!.tool === definition.name));
      stubs.push(...undeclared.map((definition) => stub(server.name, definition.name, definition.description, config.tools)));
    }
  } finally {
    await dispatchers.close();
  }
  // Pins of tools no longer declared are dropped, which is a change too.
  changed ||= (['tools', 'prompts', 'resources'] as const).some((section) => Object.keys(previous?.[section] ?? {}).some((key) => !(key in lock[section]!)));
  const written = complete && changed && !options.check;
  if (written) writeMcpLock(lockFile, lock);
  return { lockFile, complete, changed, written, lines, stubs };
}

function readPrevious(lockFile: string): McpLock | undefined {
  try {
    return readMcpLock(lockFile);
  } catch {
    return undefined;
  }
}

const UNCHANGED = 'unchanged';

type Pinned = McpPin<object>;

/** What changed since the last pin, by field: what a reviewer should look at before re-pinning. `sameItem`: the pin was of the same upstream item. */
function compareWith(before: Pinned | undefined, now: Pinned, fields: readonly string[], sameItem: boolean): string {
  if (!before) return `pinned (sha256 ${now.sha256.slice(0, 12)}…)`;
  if (before.sha256 === now.sha256 && sameItem) return UNCHANGED;
  const changed = fields.filter((field) => canonicalJson(fieldOf(before, field) ?? null) !== canonicalJson(fieldOf(now, field) ?? null));
  return `CHANGED since the last pin (${changed.join(', ') || 'upstream tool'}; sha256 ${before.sha256.slice(0, 12)}… → ${now.sha256.slice(0, 12)}…)`;
}

const fieldOf = (pin: Pinned, field: string): unknown => (pin.definition as Record<string, unknown>)[field];

const PROMPT_FIELDS = ['name', 'title', 'description', 'arguments'] as const;
const RESOURCE_FIELDS = ['uri', 'name', 'title', 'description', 'mimeType'] as const;

/**
 * A server's federated prompts (each declared name must be listed) and resources (the metadata of
 * each declared exact uri it lists; a prefix, or a uri it does not list, is readable but not
 * pinned, so agents do not see it listed), pinned into `lock`.
 */
function pinCatalog(
  server: McpServerConfig,
  catalog: UpstreamCatalog,
  previous: McpLock | undefined,
  lock: McpLock,
): { lines: string[]; complete: boolean; changed: boolean } {
  const lines: string[] = [];
  let complete = true;
  let changed = false;
  const pin = <D extends object>(section: 'prompts' | 'resources', id: string, definition: D, fields: readonly string[]) => {
    const key = catalogKey(server.name, id);
    const entry: McpCatalogEntry<D> = { server: server.name, sha256: definitionSha256(definition), definition };
    (lock[section] as Record<string, McpCatalogEntry<D>>)[key] = entry;
    const before = previous?.[section]?.[key];
    const comparison = compareWith(before, entry, fields, true);
    changed ||= comparison !== UNCHANGED;
    lines.push(`${section}.${key} ${comparison}`);
    if (comparison !== UNCHANGED && before) lines.push(...fieldDiffs(before, entry, fields));
  };
  for (const name of server.prompts?.names ?? []) {
    const found = catalog.prompts.find((prompt) => prompt.name === name);
    if (found) pin('prompts', name, pinnedPrompt(found), PROMPT_FIELDS);
    else {
      lines.push(
        `mcp_servers.${server.name}.prompts: the server lists no prompt "${name}" (it lists: ${catalog.prompts.map((p) => p.name).join(', ') || 'nothing'})`,
      );
      complete = false;
    }
  }
  for (const uri of server.resources?.uris ?? []) {
    if (uri.endsWith('*')) {
      lines.push(`mcp_servers.${server.name}.resources: ${uri} is a prefix: its uris are readable, not pinned nor listed`);
      continue;
    }
    const found = catalog.resources.find((resource) => resource.uri === uri);
    if (found) pin('resources', uri, pinnedResource(found), RESOURCE_FIELDS);
    else lines.push(`mcp_servers.${server.name}.resources: ${uri} is not listed by the server: readable, not pinned nor listed`);
  }
  if (server.prompts?.roles.length === 0 || server.resources?.roles.length === 0)
    lines.push(`  warning: mcp_servers.${server.name} offers resources or prompts to roles: [], so no agent sees them`);
  return { lines, complete, changed };
}

const DIFF_TIMEOUT_MS = 2000;
const FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;

/** A field as a reviewer reads it: a string as its text (a description line by line), anything else as indented JSON, keys sorted. */
function fieldText(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return `${value}\n`;
  return `${JSON.stringify(JSON.parse(canonicalJson(value)), null, 2)}\n`;
}

/** For each changed field of the definition, a unified diff of the pinned text and the listed one, indented under its tool. */
function fieldDiffs(before: Pinned, now: Pinned, fields: readonly string[]): string[] {
  const out: string[] = [];
  for (const field of fields) {
    const old = fieldText(fieldOf(before, field));
    const listed = fieldText(fieldOf(now, field));
    if (old === listed) continue;
    // Bounded: an upstream's definition may be large and wholly different.
    const patch = createTwoFilesPatch(`${field} (pinned)`, `${field} (listed now)`, old, listed, undefined, undefined, {
      context: 3,
      timeout: DIFF_TIMEOUT_MS,
    });
    if (patch === undefined) {
      out.push(`    ${field}: too different to show as a diff; compare mcp-lock.json with the server's tools/list`);
      continue;
    }
    // The patch's first line is a separator of '=' signs; the rest: ---/+++ headers, hunks.
    out.push(
      ...patch
        .split('\n')
        .filter((line, i) => line !== '' && !(i === 0 && /^=+$/.test(line)) && line !== '\\ No newline at end of file')
        .map((line) => `    ${line}`),
    );
  }
  return out;
}

/** A gateway.yaml entry for an upstream tool, to paste under tools: (no role may call it until one is added). */
function stub(server: string, tool: string, description: string | undefined, tools: ReadonlyMap<string, Tool>): string {
  let name = `${server}_${tool}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  if (tools.has(name)) name = `${name.slice(0, 60)}_new`;
  return [
    `  ${name}:${description ? `   # ${description.replace(/\s+/g, ' ').slice(0, 100)}` : ''}`,
    '    kind: mcp',
    `    server: ${server}`,
    `    tool: ${JSON.stringify(tool)}`,
    '    roles: []                  # the roles that may call it',
    '    requires_approval: true    # a human approves each call until you decide otherwise',
  ].join('\n');
}
