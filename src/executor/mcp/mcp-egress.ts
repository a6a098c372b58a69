import { isIP } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import type { FetchLike } from '@modelcontextprotocol/client';
import { SECRET_REFERENCE, type McpServerConfig } from '../../config/gateway-config';
import type { SecretStore } from '../../secrets/secret-store';
import { publicOnlyLookup } from '../egress';

type HttpServer = Extract<McpServerConfig, { transport: 'http' }>;

/** `template` with each `${secret:NAME}` replaced by the secret's value now. */
export async function fillSecrets(template: string, secrets: SecretStore): Promise<string> {
  let value = template;
  for (const [ref, secret] of template.matchAll(SECRET_REFERENCE)) value = value.replace(ref, await secrets.resolve(secret));
  return value;
}

/** A request the egress rules refuse (a host not allowed); the SDK sees it as a failed fetch. */
export class EgressRefused extends Error {}

/**
 * The HTTP client's connection pools for upstream MCP servers: the strict one refuses names that
 * resolve to internal addresses (checked on the connection actually made), as for http tools.
 */
export class McpDispatchers {
  readonly publicOnly = new Agent({ connect: { lookup: publicOnlyLookup } });
  readonly anyAddress = new Agent();

  async close(): Promise<void> {
    // Idempotent: a Nest app closed twice (or a test that restarts it) closes the pools once.
    await Promise.all([this.publicOnly, this.anyAddress].filter((pool) => !pool.closed && !pool.destroyed).map((pool) => pool.close()));
  }
}

/**
 * The fetch the SDK's Streamable HTTP transport uses for one server (API.md §13, the egress rules
 * of §5): every request, redirects included (the SDK follows only same-origin ones, each through
 * here), must go to an allowed host over http(s); the configured headers are added here, their
 * `${secret:…}` resolved at each request, so nothing else the gateway holds (an agent's token or
 * signature) can reach the upstream.
 */
export function upstreamFetch(server: HttpServer, secrets: SecretStore, dispatchers: McpDispatchers): FetchLike {
  return async (input, init) => {
    const url = new URL(input);
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || !server.allowed_hosts.includes(url.hostname)) {
      throw new EgressRefused(`Host "${url.hostname}" is not allowed for MCP server "${server.name}"`);
    }
    const headers = new Headers(init?.headers);
    for (const [name, template] of Object.entries(server.headers)) headers.set(name, await fillSecrets(template, secrets));
    // A listed IP literal is the operator's explicit choice; a listed name must resolve to public addresses.
    const literal = url.hostname.replace(/^\[|\]$/g, '');
    const dispatcher = server.allow_private_networks || isIP(literal) !== 0 ? dispatchers.anyAddress : dispatchers.publicOnly;
    const response = await undiciFetch(url, {
      method: init?.method,
      headers: Object.fromEntries(headers),
      body: init?.body as string | undefined,
      signal: init?.signal ?? undefined,
      redirect: 'manual',
      dispatcher,
    });
    return response as unknown as Response;
  };
}
