import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Logger } from '@nestjs/common';
import {
  Client,
  ProtocolError,
  SdkError,
  StreamableHTTPClientTransport,
  type CallToolResult,
  type GetPromptResult,
  type PriorDiscovery,
  type Progress,
  type Prompt,
  type ReadResourceResult,
  type Resource,
  type Tool as UpstreamTool,
} from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { GatewayError, PolicyDenied, ToolFailed } from '../../core/errors';
import type { McpServerConfig, McpToolDefinition } from './mcp-tool';
import type { SecretStore } from '../../secrets/secret-store';
import { EgressPools, fillSecrets } from '../egress/egress';
import { EgressRefused, MAX_UPSTREAM_MESSAGE_BYTES, UpstreamTooLarge, upstreamFetch } from './mcp-egress';
import { traceMeta } from '../../telemetry/tracing';

const CLIENT_INFO = { name: 'agent-gateway', version: '0.1.0' };
const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 30_000;
/** A connection that lived this long was healthy: the next loss retries from the shortest delay again. */
const STABLE_MS = 30_000;
const MAX_STDERR_LINE = 2000;
/** Of a stdio server's stderr, what is kept to explain its failure: its last lines, this many, this many bytes at most. */
const STDERR_TAIL_LINES = 20;
const STDERR_TAIL_BYTES = 4096;
/** How long a failed stdio connection waits for the rest of the server's stderr before it reports. */
const STDERR_DRAIN_MS = 300;
/** Of an upstream's own error text, this much reaches the caller. */
export const MAX_UPSTREAM_TEXT = 500;

export type UpstreamListing = UpstreamTool[];

/** What a server lists of the prompts and resources it federates (an empty list where it federates none). */
export interface UpstreamCatalog {
  prompts: Prompt[];
  resources: Resource[];
}

/**
 * The last lines a stdio server wrote to stderr (at most STDERR_TAIL_LINES, STDERR_TAIL_BYTES), each
 * scrubbed of the known secret values as it arrives: what an operator is shown when the server
 * fails to start or dies, instead of just "closed the connection".
 */
export class StderrTail {
  private lines: string[] = [];
  private bytes = 0;

  constructor(private readonly secrets: SecretStore) {}

  push(line: string): void {
    const scrubbed = this.secrets.matcher().replaceIn(line, () => '[REDACTED:secret]');
    this.lines.push(scrubbed);
    this.bytes += Buffer.byteLength(scrubbed) + 1;
    while (this.lines.length > STDERR_TAIL_LINES || (this.bytes > STDERR_TAIL_BYTES && this.lines.length > 1)) {
      this.bytes -= Buffer.byteLength(this.lines.shift()!) + 1;
    }
  }

  /** The lines kept, oldest first (the last one cut to the byte bound if it alone is over it). */
  get text(): string[] {
    const [only] = this.lines;
    return this.lines.length === 1 && Buffer.byteLength(only) > STDERR_TAIL_BYTES ? [only.slice(0, STDERR_TAIL_BYTES)] : [...this.lines];
  }

  /** For a log line: ` (its stderr: "a" | "b")`, or nothing when it wrote nothing. */
  describe(): string {
    const lines = this.text;
    return lines.length === 0 ? '' : `; its stderr ended with: ${lines.map((line) => JSON.stringify(line)).join(' | ')}`;
  }

  clear(): void {
    this.lines = [];
    this.bytes = 0;
  }
}

/**
 * A connected SDK client for one server, over Streamable HTTP (through the egress rules) or stdio
 * (a child process started from the argv, no shell, with the configured environment, its secrets
 * resolved now). A server that does not answer fails the connection after its timeout_ms (a stdio
 * one after at most 2 s more, for the version probe); `signal` gives up sooner. A stdio child of
 * a failed connection is killed. `prior`: the protocol era this server spoke last time (no probe).
 * No message is read past MAX_UPSTREAM_MESSAGE_BYTES (an HTTP body, an event, a stdio line):
 * `onTooLarge` is told, and the SDK's transport gives up that message (stdio: the whole connection).
 */
export async function connectUpstream(
  server: McpServerConfig,
  secrets: SecretStore,
  dispatchers: EgressPools,
  options: { onStderrLine?: (line: string) => void; signal?: AbortSignal; prior?: PriorDiscovery; onTooLarge?: (err: UpstreamTooLarge) => void } = {},
): Promise<Client> {
  // 'auto': the 2026-07-28 revision when the server speaks it, else the 2025 initialize handshake.
  // On stdio the SDK probes on a short-lived sibling process; one silent that long is taken for a
  // 2025 server (then the initialize handshake runs on the real one).
  const probeMs = server.transport === 'stdio' ? Math.min(server.timeout_ms, 2000) : server.timeout_ms;
  const client = new Client(CLIENT_INFO, { versionNegotiation: { mode: 'auto', probe: { timeoutMs: probeMs } } });
  const transport =
    server.transport === 'http'
      ? new StreamableHTTPClientTransport(new URL(server.url), { fetch: upstreamFetch(server, secrets, dispatchers, options.onTooLarge) })
      : new StdioClientTransport({
          command: server.command[0],
          args: server.command.slice(1),
          env: await resolveEnv(server.env, secrets),
          cwd: server.cwd,
          stderr: 'pipe',
          // The SDK checks this as it buffers stdout, before it appends a chunk; over it, it reports an error and closes.
          maxBufferSize: MAX_UPSTREAM_MESSAGE_BYTES,
        });
  let stderrClosed: Promise<void> = Promise.resolve();
  if (transport instanceof StdioClientTransport) {
    stderrClosed = readLines(transport.stderr as Readable, (line) => options.onStderrLine?.(line));
    // Set before connect: the SDK's Client calls it before its own handler.
    transport.onerror = (err) => {
      if (!STDIO_BUFFER_EXCEEDED.test(err.message)) return;
      // Stopped now: the SDK's close would go on reading (and dropping) its output for seconds first.
      if (transport.pid !== null) stopProcess(transport.pid);
      options.onTooLarge?.(new UpstreamTooLarge(server.name));
    };
  }
  try {
    // The SDK's timeouts bound this; racing them instead would leave the SDK to start a child after we gave up.
    await client.connect(transport, { signal: options.signal, timeout: server.timeout_ms, prior: options.prior });
  } catch (err) {
    // Belt and braces: a child started for a failed connection must not outlive it.
    await client.close().catch(() => undefined);
    await transport.close().catch(() => undefined);
    // The server's last words (why it did not start) are read before the failure is reported.
    await Promise.race([stderrClosed, new Promise((resolve) => setTimeout(resolve, STDERR_DRAIN_MS).unref())]);
    throw err;
  }
  return client;
}

/** Every page of tools/list, fresh (never a cached listing: it is what the pins are checked against). */
export async function listUpstreamTools(client: Client, timeoutMs: number): Promise<UpstreamListing> {
  return (await client.listTools(undefined, { cacheMode: 'refresh', timeout: timeoutMs })).tools;
}

/** Every page of prompts/list and resources/list, fresh, of a server that federates them (pins are checked against them). */
export async function listUpstreamCatalog(client: Client, server: McpServerConfig): Promise<UpstreamCatalog> {
  const fresh = { cacheMode: 'refresh', timeout: server.timeout_ms } as const;
  const [prompts, resources] = await Promise.all([
    server.prompts ? client.listPrompts(undefined, fresh).then((listed) => listed.prompts) : [],
    server.resources ? client.listResources(undefined, fresh).then((listed) => listed.resources) : [],
  ]);
  return { prompts, resources };
}

function stopProcess(pid: number): void {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

/** What the SDK's stdio transport reports when one line outgrows its maxBufferSize. */
const STDIO_BUFFER_EXCEEDED = /^ReadBuffer exceeded maximum size/;

/**
 * `work`, or a rejection with the reason of `tooLarge` as soon as it aborts (the SDK's own request
 * would wait for the transport to close, up to seconds for a stdio child).
 */
async function unlessTooLarge<T>(work: Promise<T>, tooLarge: AbortSignal): Promise<T> {
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(tooLarge.reason as Error);
    if (tooLarge.aborted) onAbort();
    else tooLarge.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    tooLarge.removeEventListener('abort', onAbort);
  }
}

async function resolveEnv(env: Record<string, string>, secrets: SecretStore): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, template] of Object.entries(env)) out[name] = await fillSecrets(template, secrets);
  return out;
}

/** Resolves when the stream has ended (every line handed to onLine). */
function readLines(stream: Readable | null, onLine: (line: string) => void): Promise<void> {
  if (!stream) return Promise.resolve();
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  lines.on('line', (line) => onLine(line.slice(0, MAX_STDERR_LINE)));
  return new Promise((resolve) => lines.once('close', resolve));
}

interface ErrorLink {
  name?: unknown;
  code?: unknown;
  /** An SdkHttpError's HTTP status. */
  status?: unknown;
  cause?: unknown;
}

/** The error and its causes, outermost first (the SDK wraps a refused connection two or three deep). */
function causes(err: unknown): ErrorLink[] {
  const chain: ErrorLink[] = [];
  for (let e = err as ErrorLink | undefined; e && typeof e === 'object' && chain.length < 6; e = e.cause as ErrorLink) chain.push(e);
  return chain;
}

/**
 * For logs: the error and its causes by name and code (the SDK's code, the errno, the HTTP status),
 * never their messages: a spawn error holds the command's host path, a fetch error the URL.
 */
export function describeError(err: unknown): string {
  const links = causes(err).map((e) =>
    [e.name, e.code, e.status].filter((part) => (typeof part === 'string' && part !== '') || typeof part === 'number').join(' '),
  );
  return links.filter((link, i) => link && link !== links[i - 1]).join('; cause: ') || 'unknown error';
}

/** Failures after which the connection is not trusted any more: closed, unreachable, broken HTTP. Not the upstream's own answers. */
function isConnectionProblem(err: unknown): boolean {
  if (err instanceof ProtocolError) return false;
  if (err instanceof SdkError) return ['NOT_CONNECTED', 'CONNECTION_CLOSED', 'SEND_FAILED'].includes(err.code) || err.name === 'SdkHttpError';
  return true;
}

/** The caller's view of a failed call: no host path, no stack, the upstream's own error text kept short. */
function callFailure(server: string, err: unknown): GatewayError {
  if (causes(err).some((e) => e.code === 'EINTERNALADDRESS')) {
    return new PolicyDenied('host_not_allowed', `MCP server "${server}" resolves to an internal address`);
  }
  if (err instanceof ProtocolError) return new ToolFailed(`MCP server "${server}" answered with an error: ${err.message.slice(0, MAX_UPSTREAM_TEXT)}`);
  if (err instanceof EgressRefused || err instanceof UpstreamTooLarge) return new ToolFailed(err.message);
  const code = err instanceof SdkError ? err.code : undefined;
  const what =
    err instanceof SdkError && err.name === 'SdkHttpError'
      ? 'refused the request (HTTP error)'
      : code === 'CONNECTION_CLOSED' || code === 'NOT_CONNECTED'
        ? 'closed the connection'
        : code === 'REQUEST_TIMEOUT'
          ? 'did not answer in time'
          : code === 'INVALID_RESULT'
            ? 'sent a result that does not match the pinned definition'
            : 'cannot be reached';
  return new ToolFailed(`MCP server "${server}" ${what}`);
}

interface ConnectionDeps {
  secrets: SecretStore;
  dispatchers: EgressPools;
  logger: Logger;
  /** Called with the tools the server lists, at every (re)connection and every resync. */
  onListed(server: string, tools: UpstreamListing): Promise<void>;
  /** Called with its federated prompts and resources, right after onListed. */
  onCatalog(server: string, catalog: UpstreamCatalog): Promise<void>;
}

/**
 * One upstream server, kept connected: connects (and lists its tools) at start, reconnects with
 * exponential backoff (0.5 s doubling up to 30 s) whenever the connection is lost or cannot be
 * made, and restarts a stdio server's process that way when it exits. A stdio server's stderr is
 * logged at debug (the log is redacted), and its last lines (scrubbed) are in the warning when it
 * fails to start or dies.
 */
export class McpConnection {
  private client?: Client;
  /** Aborted (with an UpstreamTooLarge) when the current client's server sends a message over the limit. */
  private tooLarge?: AbortSignal;
  private attempt?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;
  private retries = 0;
  private connectedAt = 0;
  private closed = false;
  private readonly stopping = new AbortController();
  /**
   * The era the server spoke at the last good connection: a reconnection skips the SDK's version
   * probe (on stdio, a second short-lived copy of the server). Forgotten when a connection fails.
   */
  private prior?: PriorDiscovery;
  /** Where each running call's progress goes, by the progressToken the gateway gave it. */
  private readonly progress = new Map<string, (progress: Progress) => void>();
  /** The current (or last) stdio process's last stderr lines, scrubbed. */
  private readonly stderrTail: StderrTail;

  constructor(
    readonly server: McpServerConfig,
    private readonly deps: ConnectionDeps,
  ) {
    this.stderrTail = new StderrTail(deps.secrets);
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** One attempt to connect and list, if not connected; resolves when it ends, connected or not. Never rejects. */
  connect(): Promise<void> {
    this.attempt ??= this.tryConnect().finally(() => (this.attempt = undefined));
    return this.attempt;
  }

  /** Lists the tools again (a resync); a server that does not answer is reconnected. */
  async relist(): Promise<void> {
    const client = this.client;
    const tooLarge = this.tooLarge!;
    if (!client) return;
    try {
      const tools = await unlessTooLarge(listUpstreamTools(client, this.server.timeout_ms), tooLarge);
      const catalog = await unlessTooLarge(listUpstreamCatalog(client, this.server), tooLarge);
      await this.deps.onListed(this.server.name, tools);
      await this.deps.onCatalog(this.server.name, catalog);
    } catch (err) {
      if (err instanceof UpstreamTooLarge) return; // the connection is already being reset
      if (isConnectionProblem(err) || (err instanceof SdkError && err.code === 'REQUEST_TIMEOUT'))
        this.lost(client, `did not answer tools/list: ${describeError(err)}`);
      else this.deps.logger.warn(`MCP server "${this.server.name}": tools/list failed: ${describeError(err)}`);
    }
  }

  /**
   * Calls the upstream tool; `signal` cancels it (the SDK sends the server notifications/cancelled).
   * `onProgress`: the call asks for progress (a progressToken) and each report goes there. The
   * pinned definition is what the SDK mirrors parameters from; its outputSchema is checked by the
   * caller, against the validator compiled once at load (not by the SDK, which compiles it per call).
   */
  async call(
    definition: McpToolDefinition,
    args: Record<string, unknown>,
    signal: AbortSignal,
    timeoutMs: number,
    onProgress?: (progress: Progress) => void,
  ): Promise<CallToolResult> {
    const { outputSchema: _checkedByTheCaller, ...toolDefinition } = definition;
    // Unguessable: one upstream serves many agents' calls, and a report goes to the call its token names.
    const progressToken = onProgress && `gateway-${randomUUID()}`;
    if (progressToken) this.progress.set(progressToken, onProgress);
    const traced = traceMeta(); // `_meta.traceparent`: the upstream's work joins the call's trace
    try {
      // The SDK's own timeout stays behind the executor's, which is the one that answers tool_timeout (progress does not extend it).
      return await this.request(signal, (client) =>
        client.callTool(
          { name: definition.name, arguments: args, ...((progressToken || traced) && { _meta: { ...traced, ...(progressToken && { progressToken }) } }) },
          { signal, timeout: timeoutMs + 1000, toolDefinition: toolDefinition as UpstreamTool },
        ),
      );
    } finally {
      if (progressToken) this.progress.delete(progressToken);
    }
  }

  /** Reads a resource (never from the SDK's cache: each read is the agent's, checked and audited); `signal` cancels it. */
  readResource(uri: string, signal: AbortSignal, timeoutMs: number): Promise<ReadResourceResult> {
    return this.request(signal, (client) => client.readResource({ uri }, { signal, timeout: timeoutMs + 1000, cacheMode: 'bypass' }));
  }

  /** Gets a prompt with its arguments; `signal` cancels it. */
  getPrompt(name: string, args: Record<string, string>, signal: AbortSignal, timeoutMs: number): Promise<GetPromptResult> {
    return this.request(signal, (client) => client.getPrompt({ name, arguments: args }, { signal, timeout: timeoutMs + 1000 }));
  }

  /** One request to the upstream on the current connection: a connection problem resets it; the caller sees a GatewayError without host paths. */
  private async request<T>(signal: AbortSignal, send: (client: Client) => Promise<T>): Promise<T> {
    const client = this.client;
    const tooLarge = this.tooLarge!;
    if (!client) throw new ToolFailed(`MCP server "${this.server.name}" is not connected (reconnecting)`);
    try {
      return await unlessTooLarge(send(client), tooLarge);
    } catch (err) {
      if (signal.aborted) throw err;
      if (isConnectionProblem(err)) this.lost(client, `failed a call: ${describeError(err)}`);
      throw callFailure(this.server.name, err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopping.abort();
    clearTimeout(this.retryTimer);
    await this.attempt;
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => undefined);
  }

  private async tryConnect(): Promise<void> {
    if (this.closed || this.client) return;
    const name = this.server.name;
    let client: Client | undefined;
    const tooLarge = new AbortController();
    try {
      this.stderrTail.clear();
      const onStderrLine = (line: string) => {
        this.stderrTail.push(line);
        this.deps.logger.debug(`MCP server "${name}" stderr: ${line}`);
      };
      const onTooLarge = (err: UpstreamTooLarge) => tooLarge.abort(err);
      // Not raced: the connect's own timeout bounds it, and a client it makes must not be left behind.
      client = await connectUpstream(this.server, this.deps.secrets, this.deps.dispatchers, {
        onStderrLine,
        signal: this.stopping.signal,
        prior: this.prior,
        onTooLarge,
      });
      const connected = client;
      const tools = await unlessTooLarge(listUpstreamTools(connected, this.server.timeout_ms), tooLarge.signal);
      const catalog = await unlessTooLarge(listUpstreamCatalog(connected, this.server), tooLarge.signal);
      // The gateway's own progressTokens, routed here: the SDK's onprogress loses a report that
      // arrives with the result in one read (it drops the call's handler as the result arrives,
      // before the report, dispatched a microtask later, is handled).
      connected.setNotificationHandler('notifications/progress', (notification) => {
        const { progressToken, progress, total, message } = notification.params;
        this.progress.get(String(progressToken))?.({ progress, ...(total !== undefined && { total }), ...(message !== undefined && { message }) });
      });
      // Known as connected only once it has listed its tools; a loss after that reconnects.
      connected.onclose = () => this.lost(connected, 'closed the connection');
      tooLarge.signal.addEventListener('abort', () => this.lost(connected, `sent a message over the ${MAX_UPSTREAM_MESSAGE_BYTES} byte limit`), { once: true });
      this.client = connected;
      this.tooLarge = tooLarge.signal;
      this.connectedAt = Date.now();
      const discover = connected.getDiscoverResult();
      this.prior = connected.getProtocolEra() === 'modern' && discover ? { kind: 'modern', discover } : { kind: 'legacy' };
      this.deps.logger.log(
        `MCP server "${name}" connected (${this.describe()}, protocol ${connected.getNegotiatedProtocolVersion() ?? '?'}): ${tools.length} tool(s) listed`,
      );
      await this.deps.onListed(name, tools);
      await this.deps.onCatalog(name, catalog);
    } catch (err) {
      this.prior = undefined;
      if (this.client === client) this.client = undefined;
      await client?.close().catch(() => undefined);
      if (this.closed) return;
      const delay = this.nextDelay();
      const why = tooLarge.signal.aborted ? describeError(tooLarge.signal.reason) : describeError(err);
      this.deps.logger.warn(`MCP server "${name}" cannot be reached (${this.describe()}): ${why}${this.stderrTail.describe()}; trying again in ${delay} ms`);
      this.scheduleRetry(delay);
    }
  }

  private lost(client: Client, why: string): void {
    if (this.client !== client) return;
    this.client = undefined;
    void client.close().catch(() => undefined);
    if (this.closed) return;
    if (Date.now() - this.connectedAt >= STABLE_MS) this.retries = 0;
    const delay = this.nextDelay();
    this.scheduleRetry(delay);
    const report = () => this.deps.logger.warn(`MCP server "${this.server.name}" ${why}${this.stderrTail.describe()}; reconnecting in ${delay} ms`);
    // A stdio server that died: its last stderr lines may still be on their way through the pipe.
    if (this.server.transport === 'stdio') setTimeout(report, 100).unref();
    else report();
  }

  private nextDelay(): number {
    return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** this.retries++);
  }

  private scheduleRetry(delay: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
    this.retryTimer.unref();
  }

  /** Not the URL (its path or query may hold a key) nor the command line (host paths, arguments): the host, or stdio. */
  private describe(): string {
    return this.server.transport === 'http' ? `host ${new URL(this.server.url).host}` : 'stdio';
  }
}
