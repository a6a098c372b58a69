import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, read } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { Injectable } from '@nestjs/common';
import { createTwoFilesPatch } from 'diff';
import { Redactor } from '../redaction/redactor';
import { sha256Hex } from '../core/hashing';
import { GatewayError } from '../core/errors';
import { GatewayConfig, SECRET_REFERENCE, Tool } from '../config/gateway-config';
import { ExecutorService } from '../executor/executor.service';
import { lstatIfExists, refuseHardLinked, refuseUndeletable, Workspace, WorkspacePath } from '../kinds/fs/workspace';
import type { ApprovalPreviewDto, ApprovalViewDto, ContentSummaryDto, PreviewWarningDto } from './approval.dto';
import { HiddenCharacterScan, showHiddenIn } from './visible-text';

/** Text up to this size is shown (a diff, an http body); larger or binary content by size and SHA-256. */
export const PREVIEW_TEXT_MAX_BYTES = 256 * 1024;
/** A file larger than this is not hashed for a preview (its size is shown). */
const HASH_MAX_BYTES = 64 * 1024 * 1024;
const HEAD_MAX_LINES = 20;
const HEAD_MAX_BYTES = 4096;
const READ_CHUNK_BYTES = 1024 * 1024;
const DIFF_TIMEOUT_MS = 2000;
const readAsync = promisify(read);

type Preview = Omit<ApprovalPreviewDto, 'approval_id' | 'status' | 'computed_at'>;

/** A regular file as read through a checked descriptor. */
interface FileSample {
  size: number;
  sha256: string | null;
  /** The whole file as UTF-8, when it is text and at most PREVIEW_TEXT_MAX_BYTES. */
  text: string | null;
  /** The first lines, when the file starts as text. */
  head: string | null;
}

const warning = (code: string, message: string): PreviewWarningDto => ({ code, message });
const refusal = (err: GatewayError): PreviewWarningDto => warning(err.reasonCode, `${err.message}: the call would be refused`);

/**
 * GET /api/approvals/{id}/preview (README, Approvals): what approving would do, computed now, read-only.
 * Paths are confined by the executor's Workspace rules and files read through its checked
 * descriptors; the http request is built by the executor's own request builder (no network, no
 * secret read). A check the call would fail at execution is reported as a warning, not an error.
 * Every text in the answer shows hidden and direction-changing characters as <U+XXXX>, and a
 * first warning (hidden_characters) names each one and where it is.
 */
@Injectable()
export class ApprovalPreviewer {
  private readonly workspace: Workspace;

  constructor(
    private readonly config: GatewayConfig,
    private readonly executor: ExecutorService,
    private readonly redactor: Redactor,
  ) {
    this.workspace = executor.workspace;
  }

  /** `approval`: the approver's view (exact arguments), so who may see it was decided by ApprovalService. */
  async preview(approval: ApprovalViewDto): Promise<ApprovalPreviewDto> {
    const args = approval.arguments ?? {};
    const tool = this.config.tools.get(approval.tool);
    const hidden = new HiddenCharacterScan().value('argument', args);
    const preview: Preview = tool
      ? await this.forTool(tool, args, hidden)
      : { kind: 'unknown', warnings: [warning('tool_not_registered', `Tool "${approval.tool}" is no longer configured: the call would be refused`)] };
    const found = hidden.describe();
    if (found) preview.warnings.unshift({ code: 'hidden_characters', message: found, characters: hidden.findings });
    // As every tool result: no secret value the gateway knows leaves it (a file may hold one).
    const scrubbed = this.redactor.scrubSecrets({ approval_id: approval.approval_id, status: approval.status, computed_at: new Date().toISOString(), ...preview });
    return showHiddenIn(scrubbed);
  }

  /** `hidden` collects the hidden characters of the file content shown (the arguments are already in it). */
  private async forTool(tool: Tool, args: Record<string, unknown>, hidden: HiddenCharacterScan): Promise<Preview> {
    try {
      switch (tool.kind) {
        case 'fs.write':
          return await this.write(args, hidden);
        case 'fs.delete':
          return await this.delete(args, hidden);
        case 'http':
          return this.request(tool, args);
        case 'fs.read':
        case 'fs.list':
          return this.located(tool.kind, args);
        case 'mcp':
          return upstream(tool, args);
      }
    } catch (err) {
      if (err instanceof GatewayError) return { kind: tool.kind, warnings: [refusal(err)] };
      throw err;
    }
  }

  private async write(args: Record<string, unknown>, hidden: HiddenCharacterScan): Promise<Preview> {
    const kind = 'fs.write';
    if (typeof args.path !== 'string' || typeof args.content !== 'string') {
      return { kind, warnings: [warning('invalid_arguments', 'path and content must be strings: the call would be refused')] };
    }
    const file = this.confined(() => this.workspace.confine(args.path as string));
    if ('warning' in file) return { kind, path: args.path, warnings: [file.warning] };
    const warnings: PreviewWarningDto[] = [];
    const existing = lstatIfExists(file.host);
    const proposed = { size: Buffer.byteLength(args.content), sha256: sha256Hex(args.content) };
    // Another name of this file may be outside the workspace: its content is not shown (as for a delete).
    if (!guard(warnings, () => refuseHardLinked(existing, file.display))) return { kind, path: file.display, exists: true, diff: null, current: null, proposed, warnings };
    const proposedText = proposed.size <= PREVIEW_TEXT_MAX_BYTES && !args.content.includes('\0') ? args.content : null;
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
    if (current?.text) hidden.text('current file', current.text, true);
    let diff: string | null = null;
    const oldText = current === null ? '' : current.text;
    if (oldText !== null && proposedText !== null) {
      diff = (await unifiedDiff(file.display, oldText, proposedText, current === null)) ?? null;
      if (diff === null) warnings.push(warning('diff_unavailable', 'The change is too large to show as a diff: compare sizes and SHA-256'));
    } else {
      warnings.push(warning('content_summarized', `Binary, or larger than ${PREVIEW_TEXT_MAX_BYTES / 1024} KiB: shown by size and SHA-256`));
    }
    return { kind, path: file.display, exists: existing !== undefined, diff, current: current && summary(current), proposed, warnings };
  }

  private async delete(args: Record<string, unknown>, hidden: HiddenCharacterScan): Promise<Preview> {
    const kind = 'fs.delete';
    if (typeof args.path !== 'string') return { kind, warnings: [warning('invalid_arguments', 'path must be a string: the call would be refused')] };
    const entry = this.confined(() => this.workspace.confineEntry(args.path as string));
    if ('warning' in entry) return { kind, path: args.path, warnings: [entry.warning] };
    const warnings: PreviewWarningDto[] = [];
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
    else hidden.text('file', sample.head, true);
    return { kind, path: entry.display, exists: true, size: sample.size, head: sample.head, sha256: sample.sha256, warnings };
  }

  private request(tool: Tool, args: Record<string, unknown>): Preview {
    const { url, body } = this.executor.prepareRequest(tool, args);
    const headers = Object.fromEntries(Object.entries(tool.request!.headers).map(([name, template]) => [name, this.shownHeader(template)]));
    const preview: Preview = { kind: 'http', method: tool.request!.method, url: url.href, headers, body: body ?? null, warnings: [] };
    if (body !== undefined && Buffer.byteLength(body) > PREVIEW_TEXT_MAX_BYTES) {
      preview.body = null;
      preview.body_summary = { size: Buffer.byteLength(body), sha256: sha256Hex(body) };
      preview.warnings.push(warning('content_summarized', `The body is larger than ${PREVIEW_TEXT_MAX_BYTES / 1024} KiB: shown by size and SHA-256`));
    }
    return preview;
  }

  /** `${secret:NAME}` stays a name; a credential written into the config literally is redacted. */
  private shownHeader(template: string): string {
    let shown = '';
    let from = 0;
    for (const ref of template.matchAll(SECRET_REFERENCE)) {
      shown += this.redactor.redactString(template.slice(from, ref.index)) + ref[0];
      from = ref.index! + ref[0].length;
    }
    return shown + this.redactor.redactString(template.slice(from));
  }

  /** fs.read and fs.list need approval only when the operator says so: where they would look. */
  private located(kind: string, args: Record<string, unknown>): Preview {
    if (typeof args.path !== 'string') return { kind, warnings: [warning('invalid_arguments', 'path must be a string: the call would be refused')] };
    const file = this.confined(() => this.workspace.confine(args.path as string));
    if ('warning' in file) return { kind, path: args.path, warnings: [file.warning] };
    return { kind, path: file.display, exists: lstatIfExists(file.host) !== undefined, warnings: [] };
  }

  private confined(confine: () => WorkspacePath): WorkspacePath | { warning: PreviewWarningDto } {
    try {
      return confine();
    } catch (err) {
      if (err instanceof GatewayError) return { warning: refusal(err) };
      return { warning: warning('unreadable', 'The path cannot be inspected now') };
    }
  }

  /** Reads a file through a checked descriptor (never following a link, never blocking on a FIFO). */
  private async inspect(file: WorkspacePath, warnings: PreviewWarningDto[]): Promise<FileSample | undefined> {
    let fd: number;
    try {
      fd = this.workspace.open(file.host, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      if (err instanceof GatewayError) warnings.push(refusal(err));
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
      for (let position = 0; ; ) {
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

/** Runs `check` (an executor rule that throws its refusal); a refusal becomes a warning. True when it passed. */
function guard(warnings: PreviewWarningDto[], check: () => void): boolean {
  try {
    check();
    return true;
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    warnings.push(refusal(err));
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

function summary(sample: FileSample): ContentSummaryDto {
  return { size: sample.size, sha256: sample.sha256 };
}

/** Computed without blocking the event loop; undefined when it would take too long. */
function unifiedDiff(path: string, current: string, proposed: string, newFile: boolean): Promise<string | undefined> {
  return new Promise((resolve) => {
    createTwoFilesPatch(path, path, current, proposed, newFile ? 'new file' : 'current', 'proposed', {
      context: 3,
      timeout: DIFF_TIMEOUT_MS,
      callback: resolve,
    });
  });
}

/** A tool of another MCP server: which server and tool, and the arguments it would get. */
function upstream(tool: Tool, args: Record<string, unknown>): Preview {
  return { kind: tool.kind, server: tool.mcp!.server, upstream_tool: tool.mcp!.tool, arguments: args, warnings: [] };
}
