import { fetch as undiciFetch } from 'undici';
import type { FetchLike } from '@modelcontextprotocol/client';
import type { McpServerConfig } from './mcp-tool';
import type { SecretStore } from '../../secrets/secret-store';
import { EgressPools, fillSecrets, isAllowedTarget } from '../egress/egress';

type HttpServer = Extract<McpServerConfig, { transport: 'http' }>;

/** A request the egress rules refuse (a host not allowed); the SDK sees it as a failed fetch. */
export class EgressRefused extends Error {}

/**
 * The fetch the SDK's Streamable HTTP transport uses for one server (API.md §13, the egress rules
 * of §5): every request, redirects included (the SDK follows only same-origin ones, each through
 * here), must go to an allowed host over http(s); the configured headers are added here, their
 * `${secret:…}` resolved at each request, so nothing else the gateway holds (an agent's token or
 * signature) can reach the upstream.
 */
export function upstreamFetch(server: HttpServer, secrets: SecretStore, pools: EgressPools): FetchLike {
  return async (input, init) => {
    const url = new URL(input);
    if (!isAllowedTarget(url, server.allowed_hosts)) {
      throw new EgressRefused(`Host "${url.hostname}" is not allowed for MCP server "${server.name}"`);
    }
    const headers = new Headers(init?.headers);
    for (const [name, template] of Object.entries(server.headers)) headers.set(name, await fillSecrets(template, secrets));
    const response = await undiciFetch(url, {
      method: init?.method,
      headers: Object.fromEntries(headers),
      body: init?.body as string | undefined,
      signal: init?.signal ?? undefined,
      redirect: 'manual',
      dispatcher: pools.for(url, server.allow_private_networks),
    });
    return response as unknown as Response;
  };
}
