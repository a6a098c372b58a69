import type { McpPromptDefinition, McpResourceDefinition, McpServerConfig } from './mcp-tool';

/** Longest uri an agent may ask for. */
export const MAX_URI_LENGTH = 2048;

/**
 * Dot segments, encoded slashes, dots or backslashes, whitespace and control characters: a uri with
 * one of them might be resolved by the upstream to somewhere a prefix does not cover.
 */
const UNSAFE_URI = /(^|\/)\.\.?(\/|$)|%2e|%2f|%5c|\\|\s|\p{Cc}/iu;

/** Whether `uri` is one of `uris` (exact), or starts with one that ends in '*' (a prefix) and is safe to match by prefix. */
export function uriDeclared(uris: readonly string[], uri: string): boolean {
  if (uri.length > MAX_URI_LENGTH) return false;
  return uris.some((declared) => (declared.endsWith('*') ? uri.startsWith(declared.slice(0, -1)) && !UNSAFE_URI.test(uri) : declared === uri));
}

/**
 * The upstream resources and prompts the gateway federates (mcp_servers.*.resources and .prompts):
 * which a role may see listed (the pinned ones), and which server answers a role's read or get.
 * Deny by default: what no server declares for the role is no one's.
 */
export class McpCatalog {
  constructor(private readonly servers: ReadonlyMap<string, McpServerConfig>) {}

  /** Whether any server federates resources, or prompts (the MCP door then offers that capability). */
  get offers(): { resources: boolean; prompts: boolean } {
    const all = [...this.servers.values()];
    return { resources: all.some((s) => s.resources), prompts: all.some((s) => s.prompts) };
  }

  /** The pinned resources the role may see, in uri order. */
  resourcesFor(role: string): McpResourceDefinition[] {
    const listed = [...this.servers.values()].flatMap((s) =>
      s.resources?.roles.includes(role) ? [...s.resources.pinned.values()].map((pin) => pin.definition) : [],
    );
    return listed.sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
  }

  /** The pinned prompts the role may see, in name order. */
  promptsFor(role: string): McpPromptDefinition[] {
    const listed = [...this.servers.values()].flatMap((s) =>
      s.prompts?.roles.includes(role) ? [...s.prompts.pinned.values()].map((pin) => pin.definition) : [],
    );
    return listed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The first server (in config order) that offers `uri` to the role; undefined: refused. */
  resourceServer(role: string, uri: string): string | undefined {
    for (const s of this.servers.values()) if (s.resources?.roles.includes(role) && uriDeclared(s.resources.uris, uri)) return s.name;
    return undefined;
  }

  /** The server that offers prompt `name` to the role; undefined: refused. */
  promptServer(role: string, name: string): string | undefined {
    for (const s of this.servers.values()) if (s.prompts?.roles.includes(role) && s.prompts.names.includes(name)) return s.name;
    return undefined;
  }
}
