import type { Server } from 'node:http';

/** How long a client may take, and how many may be connected at once (README: slow clients). */
export interface HttpServerLimits {
  /** GATEWAY_HEADERS_TIMEOUT_MS: from connecting until the request's headers are in. */
  headersTimeoutMs: number;
  /** GATEWAY_REQUEST_TIMEOUT_MS: until the whole request, body included, is in. The answer, a tool's run included, is not counted. */
  requestTimeoutMs: number;
  /** GATEWAY_KEEP_ALIVE_TIMEOUT_MS: how long an idle keep-alive connection stays open between requests. */
  keepAliveTimeoutMs: number;
  /** GATEWAY_MAX_CONNECTIONS: connections open at once; one more is closed as soon as it arrives. */
  maxConnections: number;
}

type Env = Record<string, string | undefined>;

const DEFAULTS: HttpServerLimits = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, maxConnections: 1024 };
const REFUSALS_LOGGED_EVERY_MS = 60_000;

/** The limits from the environment (defaults above); a bad value stops the start with its name. */
export function httpServerLimits(env: Env): HttpServerLimits {
  const read = (name: string, fallback: number, max: number): number => {
    const text = env[name];
    if (!text) return fallback;
    if (!/^[0-9]{1,9}$/.test(text) || Number(text) < 1 || Number(text) > max) throw new Error(`${name} must be an integer from 1 to ${max}`);
    return Number(text);
  };
  const limits: HttpServerLimits = {
    headersTimeoutMs: read('GATEWAY_HEADERS_TIMEOUT_MS', DEFAULTS.headersTimeoutMs, 600_000),
    requestTimeoutMs: read('GATEWAY_REQUEST_TIMEOUT_MS', DEFAULTS.requestTimeoutMs, 3_600_000),
    keepAliveTimeoutMs: read('GATEWAY_KEEP_ALIVE_TIMEOUT_MS', DEFAULTS.keepAliveTimeoutMs, 600_000),
    maxConnections: read('GATEWAY_MAX_CONNECTIONS', DEFAULTS.maxConnections, 1_000_000),
  };
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) throw new Error('GATEWAY_HEADERS_TIMEOUT_MS must not exceed GATEWAY_REQUEST_TIMEOUT_MS');
  return limits;
}

/**
 * Applies the limits to the app's HTTP server; call it before the server listens. A client too
 * slow with its headers or request gets 408 and its connection closed; a connection beyond the cap
 * is closed on arrival (and `warn`, when given, says so at most once a minute).
 */
export function configureHttpServer(server: Server, limits: HttpServerLimits, warn?: (message: string) => void): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  // Node checks both timeouts on this interval (default 30 s), read when the server starts
  // listening: without it a 10 s limit would close a stalled client only after up to 40 s.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.min(1_000, limits.headersTimeoutMs);

  let refused = 0;
  let loggedAt = -Infinity;
  server.on('drop', () => {
    refused++;
    if (!warn || performance.now() - loggedAt < REFUSALS_LOGGED_EVERY_MS) return;
    warn(`Connection cap reached (GATEWAY_MAX_CONNECTIONS=${limits.maxConnections}): refused ${refused} connection(s) since the last warning`);
    refused = 0;
    loggedAt = performance.now();
  });
}
