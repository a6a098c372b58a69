import { Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Redactor } from '../redaction/redactor';
import { GatewayError, ToolFailed, ToolTimeout } from '../core/errors';
import type { Tool } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import type { CallObserver, ToolArguments, ToolKind, ToolPreview, ToolProgress, ToolResult } from '../kinds/tool-kind';
import { ToolKinds } from '../kinds/tool-kinds';

export type { CallObserver, ToolArguments, ToolProgress, ToolResult } from '../kinds/tool-kind';

/**
 * 499: the caller cancelled the call (an MCP client's notifications/cancelled, or its closed
 * stream) while it ran; the tool was told to stop (an upstream MCP server gets the cancellation).
 * It may have run in part.
 */
export class ToolCancelled extends GatewayError {
  constructor() {
    super(499, 'cancelled', 'cancelled', 'The caller cancelled the call; the tool was told to stop');
  }
}

/**
 * Runs tools: each through its kind (the only code that touches the workspace or the network for
 * a tool, and the only place secrets are injected), within its timeout. Every result and error
 * leaves with known secret values scrubbed (Redactor.scrubSecrets: what nests deeper than it walks
 * is replaced, never passed on unread), so the answer, the stored approval outcome and the replay
 * store all hold the scrubbed copy.
 */
@Injectable()
export class ExecutorService implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    private readonly kinds: ToolKinds,
    private readonly redactor: Redactor,
    private readonly metrics: GatewayMetrics,
  ) {}

  kindOf(tool: Tool): ToolKind {
    return this.kinds.of(tool);
  }

  /**
   * Tool-specific checks (path, host, what fs.write and fs.delete may touch, an upstream's pin),
   * before approval is asked and before anything runs. Execution checks again, on descriptors.
   */
  preflight(tool: Tool, args: ToolArguments): void {
    this.kindOf(tool).preflight(tool, args);
  }

  /** What approving the call would do, asked of its kind: read-only, no network, no secret read; throws the refusal the call would meet. */
  preview(tool: Tool, args: ToolArguments): Promise<ToolPreview> {
    return this.kindOf(tool).preview(tool, args);
  }

  /**
   * Row 14: runs the tool within its timeout; the abort signal stops its work when time is up
   * (tool_timeout) or when the caller cancels (`observer.signal`: cancelled). Progress reports go to
   * `observer.onProgress`, their text scrubbed like a result, until the call ends.
   */
  async execute(tool: Tool, args: ToolArguments, observer: CallObserver = {}): Promise<ToolResult> {
    if (observer.signal?.aborted) throw new ToolCancelled();
    const started = performance.now();
    const controller = new AbortController();
    let cancelled = false;
    const cancel = () => {
      cancelled = true;
      controller.abort();
    };
    observer.signal?.addEventListener('abort', cancel, { once: true });
    const timer = setTimeout(() => controller.abort(), tool.timeout_ms);
    const stopped = new Promise<never>((_, reject) =>
      controller.signal.addEventListener('abort', () => reject(cancelled ? new ToolCancelled() : new ToolTimeout(tool.timeout_ms)), { once: true }),
    );
    let running = true;
    const onProgress =
      observer.onProgress &&
      ((progress: ToolProgress) => {
        if (running) observer.onProgress!(progress.message === undefined ? progress : { ...progress, message: this.redactor.scrubSecrets(progress.message) });
      });
    try {
      const work = this.kindOf(tool).execute(tool, args, controller.signal, onProgress);
      return this.redactor.scrubSecrets(await Promise.race([work, stopped]));
    } catch (err) {
      if (cancelled) throw new ToolCancelled();
      if (controller.signal.aborted) throw new ToolTimeout(tool.timeout_ms);
      if (err instanceof GatewayError) {
        // Its text may quote the upstream (an MCP server's own error): scrubbed like a result, before it is stored or shown.
        err.message = this.redactor.scrubSecrets(err.message);
        throw err;
      }
      throw new ToolFailed('Tool failed');
    } finally {
      running = false;
      clearTimeout(timer);
      observer.signal?.removeEventListener('abort', cancel);
      this.metrics.toolExecution(tool.name, (performance.now() - started) / 1000);
    }
  }

  /**
   * Each kind starts before the gateway serves: upstream MCP servers are connected (stdio ones
   * started), waiting a few seconds at most for their first listings; the workspace's temp file
   * sweep goes on in the background.
   */
  async onApplicationBootstrap(): Promise<void> {
    await Promise.all(this.kinds.all.map(async (kind) => kind.start?.()));
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.kinds.all.map(async (kind) => kind.close?.()));
  }
}
