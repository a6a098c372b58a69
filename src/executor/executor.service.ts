import { Injectable } from '@nestjs/common';
import { ArgumentsInvalid, GatewayError, ToolFailed, ToolTimeout } from '../common/errors';
import { GatewayConfig, Tool } from '../config/gateway-config';
import { deleteFile, listDirectory, readTextFile, writeTextFile } from './fs-tools';
import { Workspace, WorkspacePath } from './workspace';

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

/** Runs tools. The only place that touches the workspace (and, later, injects secrets). */
@Injectable()
export class ExecutorService {
  private readonly workspace: Workspace;

  constructor(config: GatewayConfig) {
    this.workspace = new Workspace(config.paths.workspace);
  }

  /** API.md §4 row 12: tool-specific checks, before approval is asked and before anything runs. */
  async preflight(tool: Tool, args: ToolArguments): Promise<void> {
    await this.target(tool, args);
  }

  /** Row 14: runs the tool within its timeout. Paths are confined again here, at execution. */
  async execute(tool: Tool, args: ToolArguments): Promise<ToolResult> {
    const file = await this.target(tool, args);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), tool.timeout_ms);
    const timedOut = new Promise<never>((_, reject) =>
      controller.signal.addEventListener('abort', () => reject(new ToolTimeout(tool.timeout_ms)), { once: true }),
    );
    try {
      return await Promise.race([this.run(tool, args, file, controller.signal), timedOut]);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? '';
      throw new ToolFailed(`${ERRNO_TEXT[code] ?? `Filesystem error${code ? ` (${code})` : ''}`}: ${file.display}`);
    } finally {
      clearTimeout(timer);
    }
  }

  private run(tool: Tool, args: ToolArguments, file: WorkspacePath, signal: AbortSignal): Promise<ToolResult> {
    switch (tool.kind) {
      case 'fs.read':
        return readTextFile(file, signal);
      case 'fs.list':
        return listDirectory(file, signal);
      case 'fs.write':
        return writeTextFile(file, args.content as string, args.create_dirs === true, signal);
      case 'fs.delete':
        return deleteFile(file);
    }
  }

  /** The workspace path a file tool acts on; the kind's own argument contract is checked here too. */
  private async target(tool: Tool, args: ToolArguments): Promise<WorkspacePath> {
    if (typeof args.path !== 'string') throw new ArgumentsInvalid([{ instancePath: '/path', message: 'must be a string' }]);
    if (tool.kind === 'fs.write' && typeof args.content !== 'string') {
      throw new ArgumentsInvalid([{ instancePath: '/content', message: 'must be a string' }]);
    }
    return this.workspace.confine(args.path);
  }
}
