import { fetch as undiciFetch, Response as UndiciResponse } from 'undici';
import type { FetchLike } from '@modelcontextprotocol/client';
import type { McpServerConfig } from './mcp-tool';
import type { SecretStore } from '../../secrets/secret-store';
import { EgressPools, fillSecrets, isAllowedTarget } from '../egress/egress';

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

/**
 * `body`, read on demand, that stops reading (cancels `body`) and errors with `tooLarge()` once
 * more than `limit` bytes arrive in all, or, for an event stream, in one event (what an SSE parser
 * holds before the blank line that ends it).
 */
export function boundedBody(body: ReadableStream<Uint8Array>, eventStream: boolean, limit: number, tooLarge: () => Error): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const size = eventStream ? new EventSize() : new TotalSize();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      if (size.exceeds(value, limit)) {
        controller.error(tooLarge());
        await reader.cancel().catch(() => undefined);
        return;
      }
      controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

interface SizeRule {
  /** Counts `chunk`; true once the size counted is over `limit`. */
  exceeds(chunk: Uint8Array, limit: number): boolean;
}

class TotalSize implements SizeRule {
  private bytes = 0;

  exceeds(chunk: Uint8Array, limit: number): boolean {
    this.bytes += chunk.length;
    return this.bytes > limit;
  }
}

const LF = 0x0a;
const CR = 0x0d;

/** The bytes of the current event of an event stream: an empty line (after LF, CR or CRLF) ends an event. */
class EventSize implements SizeRule {
  private bytes = 0;
  private lineEmpty = true;
  private afterCr = false;

  exceeds(chunk: Uint8Array, limit: number): boolean {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === LF && this.afterCr) {
        this.afterCr = false; // the LF of a CRLF: the line already ended at its CR
        continue;
      }
      this.afterCr = byte === CR;
      if (byte === LF || byte === CR) {
        if (this.lineEmpty) this.bytes = 0;
        this.lineEmpty = true;
        continue;
      }
      this.lineEmpty = false;
      if (++this.bytes > limit) return true;
    }
    return false;
  }
}
