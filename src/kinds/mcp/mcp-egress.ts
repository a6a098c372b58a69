import { fetch as undiciFetch, Response as UndiciResponse } from 'undici';
import type { FetchLike } from '@modelcontextprotocol/client';
import type { McpServerConfig } from './mcp-tool';
import type { SecretStore } from '../../secrets/secret-store';
import { EgressPools, fillSecrets, isAllowedTarget } from '../egress/egress';
import { boundedBody } from '../egress/bounded-body';

type HttpServer = Extract<McpServerConfig, { transport: 'http' }>;

/**
 * The most the gateway reads of one message from an upstream MCP server: an HTTP body, one event
 * of an event stream, one stdio line (a tools/list answer included). A call's result may be 1 MiB;
 * the rest is room for the JSON-RPC envelope and JSON escapes. Checked while reading, so an
 * endless answer costs no more memory than this.
 */
export const MAX_UPSTREAM_MESSAGE_BYTES = 2 * 1024 * 1024;

/** Statuses a Response may not be made with a body for. */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/** A request the egress rules refuse (a host not allowed); the SDK sees it as a failed fetch. */
export class EgressRefused extends Error {}

/** An upstream sent a message over MAX_UPSTREAM_MESSAGE_BYTES; reading stopped there. */
export class UpstreamTooLarge extends Error {
  constructor(server: string) {
    super(`MCP server "${server}" sent a message larger than ${MAX_UPSTREAM_MESSAGE_BYTES / (1024 * 1024)} MiB; reading stopped and the connection is reset`);
    this.name = 'UpstreamTooLarge';
  }
}

/**
 * The fetch the SDK's Streamable HTTP transport uses for one server (README, "Upstream MCP servers"):
 * every request, redirects included (the SDK follows only same-origin ones, each through here),
 * must go to an allowed host over http(s); the configured headers are added here, their
 * `${secret:…}` resolved at each request, so nothing else the gateway holds (an agent's token or
 * signature) can reach the upstream. Every answer's body is read through boundedBody:
 * `onTooLarge` is told (before the body errors) when one goes over the limit.
 */
export function upstreamFetch(
  server: HttpServer,
  secrets: SecretStore,
  pools: EgressPools,
  onTooLarge: (err: UpstreamTooLarge) => void = () => undefined,
): FetchLike {
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
    if (!response.body || NULL_BODY_STATUSES.has(response.status)) return response;
    const eventStream = /^\s*text\/event-stream\b/i.test(response.headers.get('content-type') ?? '');
    const body = boundedBody(response.body as ReadableStream<Uint8Array>, eventStream, MAX_UPSTREAM_MESSAGE_BYTES, () => {
      const err = new UpstreamTooLarge(server.name);
      onTooLarge(err);
      return err;
    });
    const bounded = new UndiciResponse(body as never, { status: response.status, statusText: response.statusText, headers: response.headers });
    return bounded;
  };
}
