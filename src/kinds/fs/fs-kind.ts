import { existsSync } from 'node:fs';
import { Injectable, Logger } from '@nestjs/common';
import { GatewayConfig } from '../../config/gateway-config';
import { ArgumentsInvalid, GatewayError, ToolFailed } from '../../core/errors';
import type { ToolArguments, ToolHints, ToolKind, ToolPreview, ToolResult } from '../tool-kind';
import { FS_KINDS, type FsTool } from './fs-config';
import { FsPreview } from './fs-preview';
import { deleteEntry, listDirectory, readTextFile, writeTextFile } from './fs-tools';
import { DESCRIPTORS, lstatIfExists, refuseHardLinked, refuseUndeletable, Workspace, type WorkspacePath } from './workspace';

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

/** `kind: fs.read | fs.list | fs.write | fs.delete`: files in the workspace sandbox, paths confined at the check and again at execution. */
@Injectable()
export class FsKind implements ToolKind<FsTool> {
  readonly kinds = FS_KINDS;
  private readonly logger = new Logger(FsKind.name);
  private readonly workspace: Workspace;
  private readonly previews: FsPreview;
  private readonly stopping = new AbortController();

  constructor(config: GatewayConfig) {
    this.workspace = new Workspace(config.paths.workspace);
    this.previews = new FsPreview(this.workspace);
  }

  /** What fs.write and fs.delete may touch, besides the path itself. */
  preflight(tool: FsTool, args: ToolArguments): void {
    const file = this.fileTarget(tool, args);
    if (tool.kind === 'fs.delete') refuseUndeletable(lstatIfExists(file.host), file);
    else if (tool.kind === 'fs.write') refuseHardLinked(lstatIfExists(file.host), file.display);
  }

  /** Paths are confined again here, at execution. */
  async execute(tool: FsTool, args: ToolArguments, signal: AbortSignal): Promise<ToolResult> {
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

  /** Read-only looks through the workspace's checked descriptors: a write's change, what a delete removes, where a read or list would look. */
  preview(tool: FsTool, args: ToolArguments): Promise<ToolPreview> {
    return this.previews.preview(tool, args);
  }

  hints(tool: FsTool): ToolHints {
    const readOnly = tool.kind === 'fs.read' || tool.kind === 'fs.list';
    return { readOnlyHint: readOnly, destructiveHint: !readOnly, openWorldHint: false };
  }

  /**
   * The temp file sweep runs in the background while calls are served: it removes only files last
   * changed before this process started.
   */
  async start(): Promise<void> {
    if (!existsSync(DESCRIPTORS)) this.logger.warn('File tools need /proc/self/fd (Linux): without it every file tool call is refused');
    this.workspace.sweepTempFiles(this.stopping.signal).then(
      ({ removed, complete }) => {
        if (removed > 0) this.logger.log(`Removed ${removed} temp file(s) left by an interrupted write`);
        if (!complete && !this.stopping.signal.aborted) this.logger.warn('Temp file sweep stopped at its limit of 100,000 workspace entries');
      },
      (err) => this.logger.warn(`Temp file sweep failed (${(err as NodeJS.ErrnoException).code ?? 'error'})`),
    );
  }

  async close(): Promise<void> {
    this.stopping.abort();
  }

  /**
   * The workspace path a file tool acts on (for fs.delete the entry itself, not a symlink's
   * target); the kind's own argument contract is checked here too.
   */
  private fileTarget(tool: FsTool, args: ToolArguments): WorkspacePath {
    if (typeof args.path !== 'string') throw new ArgumentsInvalid([{ instancePath: '/path', message: 'must be a string' }]);
    if (tool.kind === 'fs.write' && typeof args.content !== 'string') {
      throw new ArgumentsInvalid([{ instancePath: '/content', message: 'must be a string' }]);
    }
    return tool.kind === 'fs.delete' ? this.workspace.confineEntry(args.path) : this.workspace.confine(args.path);
  }
}
