import { existsSync } from 'node:fs';
import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { AuditLog } from '../audit/audit-log.service';
import { Redactor } from '../audit/redactor';
import { ArgumentsInvalid, GatewayError, ToolFailed, ToolTimeout } from '../common/errors';
import { GatewayConfig, Tool } from '../config/gateway-config';
import { GatewayMetrics } from '../health/gateway-metrics';
import { SecretStore } from '../secrets/secret-store';
import { deleteEntry, listDirectory, readTextFile, writeTextFile } from './fs-tools';
import { HttpToolRunner } from './http-tool';
import { McpUpstreams } from './mcp/mcp-upstreams';
import { DESCRIPTORS, lstatIfExists, refuseHardLinked, refuseUndeletable, Workspace, WorkspacePath } from './workspace';

export type ToolArguments = Record<string, unknown>;
export type ToolResult = Record<string, unknown>;

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  EACCES: 'Permission denied',
  EPERM: 'Permission denied',
  ENOTEMPTY: 'Directory not empty',
  ELOOP: 'Too many symbolic links',
  ENOSPC: 'No space left on device',
};

/**
 * Runs tools: the only code that touches the workspace or the network for a tool, and the only
 * place secrets are injected. Every result and error leaves with known secret values scrubbed
 * (Redactor.scrubSecrets: what nests deeper than it walks is replaced, never passed on unread),
 * so the answer, the stored approval outcome and the replay store all hold the scrubbed copy.
 */
@Injectable()
export class ExecutorService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ExecutorService.name);
  /** The workspace, for read-only looks by the approval preview (it writes nothing through it). */
  readonly workspace: Workspace;
  private readonly http: HttpToolRunner;
  private readonly mcp: McpUpstreams;
  private readonly stopping = new AbortController();

  constructor(
    config: GatewayConfig,
    secrets: SecretStore,
    private readonly redactor: Redactor,
    private readonly metrics: GatewayMetrics,
    audit: AuditLog,
  ) {
    this.workspace = new Workspace(config.paths.workspace);
    this.http = new HttpToolRunner(secrets);
    this.mcp = new McpUpstreams(config, secrets, audit, metrics);
  }

  /** The http request a call would send, secrets left as `${secret:NAME}`: no network, no secret read. */
  prepareRequest(tool: Tool, args: ToolArguments): ReturnType<HttpToolRunner['prepare']> {
    return this.http.prepare(tool, args);
  }

  /**
   * API.md §4 row 12: tool-specific checks (path, host, what fs.write and fs.delete may touch),
   * before approval is asked and before anything runs. Execution checks again, on descriptors.
   */
  preflight(tool: Tool, args: ToolArguments): void {
    if (tool.kind === 'http') {
      this.http.prepare(tool, args);
      return;
    }
    if (tool.kind === 'mcp') {
      this.mcp.check(tool);
      return;
    }
    const file = this.fileTarget(tool, args);
    if (tool.kind === 'fs.delete') refuseUndeletable(lstatIfExists(file.host), file);
    else if (tool.kind === 'fs.write') refuseHardLinked(lstatIfExists(file.host), file.display);
  }

  /** Row 14: runs the tool within its timeout; the abort signal stops its work when time is up. */
  async execute(tool: Tool, args: ToolArguments): Promise<ToolResult> {
    const started = performance.now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), tool.timeout_ms);
    const timedOut = new Promise<never>((_, reject) =>
      controller.signal.addEventListener('abort', () => reject(new ToolTimeout(tool.timeout_ms)), { once: true }),
    );
    try {
      const work =
        tool.kind === 'http'
          ? this.http.run(tool, args, controller.signal)
          : tool.kind === 'mcp'
            ? this.mcp.call(tool, args, controller.signal)
            : this.runFileTool(tool, args, controller.signal);
      return this.redactor.scrubSecrets(await Promise.race([work, timedOut]));
    } catch (err) {
      if (controller.signal.aborted) throw new ToolTimeout(tool.timeout_ms);
      if (err instanceof GatewayError) {
        // Its text may quote the upstream (an MCP server's own error): scrubbed like a result, before it is stored or shown.
        err.message = this.redactor.scrubSecrets(err.message);
        throw err;
      }
      throw new ToolFailed('Tool failed');
    } finally {
      clearTimeout(timer);
      this.metrics.toolExecution(tool.name, (performance.now() - started) / 1000);
    }
  }

  /**
   * Upstream MCP servers are connected (stdio ones started) here, before the gateway serves: it
   * waits a few seconds at most for their first listings, then the slow ones go on in the background.
   * The temp file sweep runs in the background while calls are served: it removes only files last
   * changed before this process started.
   */
  async onApplicationBootstrap(): Promise<void> {
    if (!existsSync(DESCRIPTORS)) this.logger.warn('File tools need /proc/self/fd (Linux): without it every file tool call is refused');
    this.workspace.sweepTempFiles(this.stopping.signal).then(
      ({ removed, complete }) => {
        if (removed > 0) this.logger.log(`Removed ${removed} temp file(s) left by an interrupted write`);
        if (!complete && !this.stopping.signal.aborted) this.logger.warn('Temp file sweep stopped at its limit of 100,000 workspace entries');
      },
      (err) => this.logger.warn(`Temp file sweep failed (${(err as NodeJS.ErrnoException).code ?? 'error'})`),
    );
    await this.mcp.start();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping.abort();
    await Promise.all([this.http.close(), this.mcp.close()]);
  }

  /** Paths are confined again here, at execution. */
  private async runFileTool(tool: Tool, args: ToolArguments, signal: AbortSignal): Promise<ToolResult> {
    const file = this.fileTarget(tool, args);
    try {
      switch (tool.kind) {
        case 'fs.read':
          return await readTextFile(this.workspace, file, signal);
        case 'fs.list':
          return await listDirectory(this.workspace, file, signal);
        case 'fs.write':
          return await writeTextFile(this.workspace, file, args.content as string, args.create_dirs === true, signal);
        default:
          return await deleteEntry(this.workspace, file, signal);
      }
    } catch (err) {
      if (err instanceof GatewayError || signal.aborted) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? '';
      throw new ToolFailed(`${ERRNO_TEXT[code] ?? `Filesystem error${code ? ` (${code})` : ''}`}: ${file.display}`);
    }
  }

  /**
   * The workspace path a file tool acts on (for fs.delete the entry itself, not a symlink's
   * target); the kind's own argument contract is checked here too.
   */
  private fileTarget(tool: Tool, args: ToolArguments): WorkspacePath {
    if (typeof args.path !== 'string') throw new ArgumentsInvalid([{ instancePath: '/path', message: 'must be a string' }]);
    if (tool.kind === 'fs.write' && typeof args.content !== 'string') {
      throw new ArgumentsInvalid([{ instancePath: '/content', message: 'must be a string' }]);
    }
    return tool.kind === 'fs.delete' ? this.workspace.confineEntry(args.path) : this.workspace.confine(args.path);
  }
}
