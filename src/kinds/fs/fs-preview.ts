import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, read } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { GatewayError } from '../../core/errors';
import { sha256Hex } from '../../core/hashing';
import {
  type ContentSummary,
  PREVIEW_TEXT_MAX_BYTES,
  previewRefusal,
  previewWarning as warning,
  type PreviewWarning,
  type ToolArguments,
  type ToolPreview,
} from '../tool-kind';
import type { FsTool } from './fs-config';
import { lstatIfExists, refuseHardLinked, refuseUndeletable, type Workspace, type WorkspacePath } from './workspace';

/** A file larger than this is not hashed for a preview (its size is shown). */
const HASH_MAX_BYTES = 64 * 1024 * 1024;
const HEAD_MAX_LINES = 20;
const HEAD_MAX_BYTES = 4096;
const READ_CHUNK_BYTES = 1024 * 1024;
const readAsync = promisify(read);

/** A regular file as read through a checked descriptor. */
interface FileSample {
  size: number;
  sha256: string | null;
  /** The whole file as UTF-8, when it is text and at most PREVIEW_TEXT_MAX_BYTES. */
  text: string | null;
  /** The first lines, when the file starts as text. */
  head: string | null;
}

/**
 * The approval preview of a file tool's call: paths confined by the Workspace rules, files read
 * through its checked descriptors, nothing written. fs.write shows the change (as a diff, made by
 * the approval preview), fs.delete what would be deleted, fs.read and fs.list where they would look.
 */
export class FsPreview {
  constructor(private readonly workspace: Workspace) {}

  preview(tool: FsTool, args: ToolArguments): Promise<ToolPreview> {
    switch (tool.kind) {
      case 'fs.write':
        return this.write(args);
      case 'fs.delete':
        return this.delete(args);
      default:
        return Promise.resolve(this.located(tool.kind, args));
    }
  }

  private async write(args: ToolArguments): Promise<ToolPreview> {
    const kind = 'fs.write';
    if (typeof args.path !== 'string' || typeof args.content !== 'string') {
      return { kind, warnings: [warning('invalid_arguments', 'path and content must be strings: the call would be refused')] };
    }
    const content = args.content;
    const file = this.confined(() => this.workspace.confine(args.path as string));
    if ('warning' in file) return { kind, path: args.path, warnings: [file.warning] };
    const warnings: PreviewWarning[] = [];
    const existing = lstatIfExists(file.host);
    const proposed = { size: Buffer.byteLength(content), sha256: sha256Hex(content) };
    // Another name of this file may be outside the workspace: its content is not shown (as for a delete).
    if (!guard(warnings, () => refuseHardLinked(existing, file.display)))
      return { kind, path: file.display, exists: true, diff: null, current: null, proposed, warnings };
    const proposedText = proposed.size <= PREVIEW_TEXT_MAX_BYTES && !content.includes('\0') ? content : null;
    const parent = lstatIfExists(dirname(file.host));
    const parentDisplay = file.display.slice(0, file.display.lastIndexOf('/')) || '/workspace';
    if (file.host === this.workspace.root || existing?.isDirectory()) {
      warnings.push(warning('is_directory', `${file.display} is a directory: the write would fail`));
    } else if (!parent && args.create_dirs !== true) {
      warnings.push(warning('parent_missing', `The folder ${parentDisplay} does not exist and create_dirs is not set: the write would fail`));
    } else if (parent && !parent.isDirectory()) {
      warnings.push(warning('parent_not_directory', `${parentDisplay} is not a folder: the write would fail`));
    }
    let current: FileSample | null = null;
    if (existing && !existing.isDirectory()) {
      const sample = await this.inspect(file, warnings);
      if (sample === undefined) return { kind, path: file.display, exists: true, diff: null, current: null, proposed, warnings };
      current = sample;
    }
    return {
      kind,
      path: file.display,
      exists: existing !== undefined,
      diff: null,
      current: current && summary(current),
      proposed,
      warnings,
      shown: current?.text ? [{ where: 'current file', text: current.text }] : [],
      change: { name: file.display, current: current === null ? '' : current.text, proposed: proposedText, created: current === null },
    };
  }

  private async delete(args: ToolArguments): Promise<ToolPreview> {
    const kind = 'fs.delete';
    if (typeof args.path !== 'string') return { kind, warnings: [warning('invalid_arguments', 'path must be a string: the call would be refused')] };
    const entry = this.confined(() => this.workspace.confineEntry(args.path as string));
    if ('warning' in entry) return { kind, path: args.path, warnings: [entry.warning] };
    const warnings: PreviewWarning[] = [];
    const stat = lstatIfExists(entry.host);
    if (!guard(warnings, () => refuseUndeletable(stat, entry))) return { kind, path: entry.display, exists: stat !== undefined, warnings };
    if (!stat) return { kind, path: entry.display, exists: false, warnings: [warning('not_found', `Nothing at ${entry.display}: the delete would fail`)] };
    if (stat.isSymbolicLink()) {
      warnings.push(warning('symlink', `${entry.display} is a symbolic link: the link is deleted, not what it points to`));
      return { kind, path: entry.display, exists: true, size: stat.size, head: null, sha256: null, warnings };
    }
    const sample = stat.isFile() ? await this.inspect(entry, warnings) : undefined;
    if (!sample) return { kind, path: entry.display, exists: true, size: stat.size, head: null, sha256: null, warnings };
    if (sample.head === null) warnings.push(warning('content_summarized', 'Not text: shown by size and SHA-256'));
    const shown = sample.head === null ? [] : [{ where: 'file', text: sample.head }];
    return { kind, path: entry.display, exists: true, size: sample.size, head: sample.head, sha256: sample.sha256, warnings, shown };
  }

  /** fs.read and fs.list need approval only when the operator says so: where they would look. */
  private located(kind: string, args: ToolArguments): ToolPreview {
    if (typeof args.path !== 'string') return { kind, warnings: [warning('invalid_arguments', 'path must be a string: the call would be refused')] };
    const file = this.confined(() => this.workspace.confine(args.path as string));
    if ('warning' in file) return { kind, path: args.path, warnings: [file.warning] };
    return { kind, path: file.display, exists: lstatIfExists(file.host) !== undefined, warnings: [] };
  }

  private confined(confine: () => WorkspacePath): WorkspacePath | { warning: PreviewWarning } {
    try {
      return confine();
    } catch (err) {
      if (err instanceof GatewayError) return { warning: previewRefusal(err) };
      return { warning: warning('unreadable', 'The path cannot be inspected now') };
    }
  }

  /** Reads a file through a checked descriptor (never following a link, never blocking on a FIFO). */
  private async inspect(file: WorkspacePath, warnings: PreviewWarning[]): Promise<FileSample | undefined> {
    let fd: number;
    try {
      fd = this.workspace.open(file.host, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      if (err instanceof GatewayError) warnings.push(previewRefusal(err));
      else warnings.push(warning('unreadable', `${file.display} cannot be read now (${(err as NodeJS.ErrnoException).code ?? 'error'})`));
      return undefined;
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) {
        warnings.push(warning('not_regular_file', `${file.display} is not a regular file`));
        return undefined;
      }
      // Checked again on what was opened: a link made since the lstat must not show an outside file.
      if (!guard(warnings, () => refuseHardLinked(stat, file.display))) return undefined;
      const hash = stat.size <= HASH_MAX_BYTES ? createHash('sha256') : undefined;
      const kept: Buffer[] = [];
      let keptBytes = 0;
      const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
      for (let position = 0; ;) {
        const { bytesRead } = await readAsync(fd, buffer, 0, READ_CHUNK_BYTES, position);
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        hash?.update(chunk);
        if (keptBytes <= PREVIEW_TEXT_MAX_BYTES) {
          kept.push(Buffer.from(chunk.subarray(0, PREVIEW_TEXT_MAX_BYTES + 1 - keptBytes)));
          keptBytes += kept[kept.length - 1].length;
        }
        position += bytesRead;
        if (!hash && keptBytes > PREVIEW_TEXT_MAX_BYTES) break;
      }
      const start = Buffer.concat(kept);
      const whole = start.length <= PREVIEW_TEXT_MAX_BYTES ? asText(start) : null;
      return { size: stat.size, sha256: hash?.digest('hex') ?? null, text: whole, head: headOf(start) };
    } finally {
      closeSync(fd);
    }
  }
}

/** Runs `check` (a workspace rule that throws its refusal); a refusal becomes a warning. True when it passed. */
function guard(warnings: PreviewWarning[], check: () => void): boolean {
  try {
    check();
    return true;
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    warnings.push(previewRefusal(err));
    return false;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 text without NUL bytes, or null (binary). */
function asText(bytes: Buffer): string | null {
  if (bytes.includes(0)) return null;
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/** The first lines of a file that starts as text; a character cut at the 4 KiB mark is dropped. */
function headOf(start: Buffer): string | null {
  const bytes = start.subarray(0, HEAD_MAX_BYTES);
  if (bytes.includes(0)) return null;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: true });
  } catch {
    return null;
  }
  return text.split('\n').slice(0, HEAD_MAX_LINES).join('\n');
}

function summary(sample: FileSample): ContentSummary {
  return { size: sample.size, sha256: sample.sha256 };
}
