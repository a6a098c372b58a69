import { KeyObject } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { type Approver, GatewayConfig, type Tool } from './gateway-config';

/**
 * What a service builds from the configuration, made ready for `next` (it may throw: then nothing
 * changes), and returned as the step that makes it current (it must not throw).
 */
export type SwapParticipant = (next: GatewayConfig) => () => void;

/**
 * The live configuration's one way to change while running. The GatewayConfig every service holds
 * is this instance; a reload replaces its fields in one synchronous step, together with what the
 * services derived from it (a registry's lists by role, the MCP door's token list), so no call ever
 * sees a half-swapped configuration. A call in flight keeps the agent and tool objects it holds.
 */
@Injectable()
export class ConfigSwaps {
  private readonly participants: SwapParticipant[] = [];

  constructor(private readonly live: GatewayConfig) {}

  /** For a service that keeps something built from the config: it is rebuilt at each swap. */
  follow(participant: SwapParticipant): void {
    this.participants.push(participant);
  }

  /**
   * Prepares every participant for `next` (a throw leaves everything as it was) and returns the
   * swap: the config's fields and every participant's state replaced in one synchronous step.
   */
  prepare(next: GatewayConfig): () => void {
    const commits = this.participants.map((prepare) => prepare(next));
    return () => {
      GatewayConfig.replace(this.live, next);
      for (const commit of commits) commit();
    };
  }
}

/** Names of what changed in one section of the config: ids, names, token fingerprints; never values. */
export interface SectionChanges {
  added?: string[];
  removed?: string[];
  changed?: string[];
}

export type ConfigChanges = Record<string, SectionChanges>;

/** Settings the running process cannot take up: they keep their value until a restart. */
const RESTART_BOUND_SETTINGS = ['max_body_bytes', 'mcp_resync_s'];

/**
 * The configuration to swap in: `loaded`, except for what is only read at start, which keeps its
 * running value and is named in `restartRequired`: settings the HTTP server and timers were set
 * up with, `audit_sinks`, `oauth`, the tool kinds' own sections (mcp_servers), and an mcp tool
 * that is new or bound to another upstream definition (its connection is made at start; removing
 * one takes effect at once). What comes from the environment (paths, database, Redis, policy
 * engine, audit key) cannot change without a restart either, and is always kept.
 */
export function keepRestartBound(live: GatewayConfig, loaded: GatewayConfig): { next: GatewayConfig; restartRequired: string[] } {
  const restartRequired: string[] = [];
  const kept = <T>(name: string, running: T, wanted: T): T => {
    if (same(running, wanted)) return wanted;
    restartRequired.push(name);
    return running;
  };
  const settings = { ...loaded.settings } as unknown as Record<string, unknown>;
  const runningSettings = live.settings as unknown as Record<string, unknown>;
  for (const key of RESTART_BOUND_SETTINGS) settings[key] = kept(`settings.${key}`, runningSettings[key], settings[key]);
  const tools = new Map<string, Tool>();
  for (const [name, tool] of loaded.tools) {
    const running = live.tools.get(name);
    if (tool.mcp === undefined) tools.set(name, tool);
    else if (running?.mcp === undefined) restartRequired.push(`tools.${name} (an mcp tool is connected at start)`);
    else tools.set(name, same(running.mcp, tool.mcp) ? tool : kept(`tools.${name} (its upstream binding)`, running, tool));
  }
  const next = new GatewayConfig({
    ...loaded,
    settings: settings as unknown as GatewayConfig['settings'],
    tools,
    auditSinks: kept('audit_sinks', live.auditSinks, loaded.auditSinks),
    oauth: kept('oauth', live.oauth, loaded.oauth),
    sections: kept('mcp_servers', live.sections, loaded.sections),
    source: live.source,
    paths: live.paths,
    redisUrl: live.redisUrl,
    databaseUrl: live.databaseUrl,
    policy: live.policy,
    auditKey: live.auditKey,
  });
  return { next, restartRequired };
}

/**
 * What differs between two configurations, by section: agents, tools, roles, approvers and secrets
 * by id or name, settings by key, MCP and approver tokens by fingerprint (`agent_id/` and the first
 * 8 hex digits of the token's SHA-256, which the config already holds). `rotatedSecrets`: secrets
 * whose file changed (the values are never read here).
 */
export function describeChanges(before: GatewayConfig, after: GatewayConfig, rotatedSecrets: readonly string[] = []): ConfigChanges {
  const changes: ConfigChanges = {};
  const put = (section: string, found: SectionChanges) => {
    const named = Object.fromEntries(Object.entries(found).flatMap(([kind, names]) => (names.length > 0 ? [[kind, capped(names)]] : [])));
    if (Object.keys(named).length > 0) changes[section] = named;
  };
  put(
    'agents',
    byKey(before.agents, after.agents, (agent) => ({ ...agent, mcp_tokens: undefined })),
  );
  put('tools', byKey(before.tools, after.tools));
  put('roles', byKey(asMap(before.roles), asMap(after.roles)));
  put(
    'approvers',
    byKey(asMap<Approver>(byId(before.approvers)), asMap<Approver>(byId(after.approvers)), (approver) => ({ ...approver, token_sha256: undefined })),
  );
  put('settings', { changed: byKey(asMap(before.settings), asMap(after.settings)).changed ?? [] });
  const secrets = byKey(asMap(before.secrets), asMap(after.secrets));
  put('secrets', { ...secrets, changed: [...new Set([...(secrets.changed ?? []), ...rotatedSecrets])].sort() });
  const tokens = byKey(tokenFingerprints(before), tokenFingerprints(after));
  put('tokens', { added: tokens.added ?? [], removed: tokens.removed ?? [] });
  return changes;
}

/** The most names one list of a change holds (then `+N more`): a record stays small when 10,000 tools go. */
const MAX_NAMES = 200;

const capped = (names: string[]) => (names.length > MAX_NAMES ? [...names.slice(0, MAX_NAMES), `+${names.length - MAX_NAMES} more`] : names);

function byKey<T>(before: ReadonlyMap<string, T>, after: ReadonlyMap<string, T>, compared: (value: T) => unknown = (value) => value): SectionChanges {
  const added = [...after.keys()].filter((key) => !before.has(key));
  const removed = [...before.keys()].filter((key) => !after.has(key));
  const changed = [...after.keys()].filter((key) => before.has(key) && !same(compared(before.get(key)!), compared(after.get(key)!)));
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() };
}

const asMap = <T>(record: object): ReadonlyMap<string, T> => new Map(Object.entries(record) as [string, T][]);
const byId = <T extends { id: string }>(list: readonly T[]): Record<string, T> => Object.fromEntries(list.map((item) => [item.id, item]));

function tokenFingerprints(config: GatewayConfig): ReadonlyMap<string, true> {
  const fingerprint = (owner: string, sha256: Buffer) => `${owner}/${sha256.toString('hex').slice(0, 8)}`;
  return new Map([
    ...[...config.agents.values()].flatMap((agent) => agent.mcp_tokens.map((token) => [fingerprint(agent.id, token.sha256), true] as const)),
    ...config.approvers.map((approver) => [fingerprint(`approver:${approver.id}`, approver.token_sha256), true] as const),
  ]);
}

/** Whether two parts of a configuration say the same (compiled validators and other functions aside; keys in the order given). */
export function same(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a, comparable) === JSON.stringify(b, comparable);
}

/**
 * JSON for what plain JSON would drop or cannot show: sets, maps, keys, patterns (a Buffer is
 * shown by its own toJSON). Other class instances (a schema compiler a kind keeps) are built from
 * the rest, and not compared.
 */
function comparable(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  if (value instanceof Set) return [...(value as Set<unknown>)].sort();
  if (value instanceof Map) return [...(value as Map<unknown, unknown>)];
  if (value instanceof KeyObject) return value.type === 'public' ? value.export({ format: 'der', type: 'spki' }).toString('hex') : '[key]';
  if (value instanceof RegExp) return String(value);
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null ? value : `[${value.constructor.name}]`;
}
