import { closeSync, constants, fstatSync, openSync, read, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { ToolFailed } from '../common/errors';
import type { WorkspacePath } from './workspace';

export const MAX_READ_BYTES = 1024 * 1024;
const MAX_LIST_ENTRIES = 10_000;
const SYNC_READ_BYTES = 64 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const readAsync = promisify(read);

/**
 * Opened without blocking (O_NONBLOCK), so a FIFO or device in the workspace is refused at once
 * instead of holding the call. Small files are read synchronously: a page-cache read of a few KiB
 * costs less than a hop through the libuv thread pool; larger ones go through the pool.
 */
export async function readTextFile(file: WorkspacePath, signal: AbortSignal) {
  const fd = openSync(file.host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new ToolFailed(`Not a regular file: ${file.display}`);
    if (stat.size > MAX_READ_BYTES) throw new ToolFailed(`File is larger than 1 MiB: ${file.display}`);
    const bytes = stat.size <= SYNC_READ_BYTES ? readAllSync(fd, stat.size) : await readAll(fd, stat.size, signal);
    let content: string;
    try {
      content = utf8.decode(bytes);
    } catch {
      throw new ToolFailed(`Not UTF-8 text: ${file.display}`);
    }
    return { path: file.display, content, size: bytes.length };
  } finally {
    closeSync(fd);
  }
}

/** Up to `size` bytes from the start (fewer if the file shrank since fstat). */
function readAllSync(fd: number, size: number): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  let filled = 0;
  for (let n = -1; filled < size && n !== 0; filled += n) n = readSync(fd, buffer, filled, size - filled, filled);
  return buffer.subarray(0, filled);
}

async function readAll(fd: number, size: number, signal: AbortSignal): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(size);
  let filled = 0;
  for (let n = -1; filled < size && n !== 0; filled += n) {
    signal.throwIfAborted();
    n = (await readAsync(fd, buffer, filled, size - filled, filled)).bytesRead;
  }
  return buffer.subarray(0, filled);
}

export async function listDirectory(dir: WorkspacePath, signal: AbortSignal) {
  const dirents = await readdir(dir.host, { withFileTypes: true });
  signal.throwIfAborted();
  const wanted = dirents.filter((d) => d.isFile() || d.isDirectory()).sort((a, b) => (a.name < b.name ? -1 : 1));
  const shown = wanted.slice(0, MAX_LIST_ENTRIES);
  const entries = await Promise.all(
    shown.map(async (d) => ({
      name: d.name,
      type: d.isDirectory() ? ('dir' as const) : ('file' as const),
      size: d.isDirectory() ? 0 : (await lstat(join(dir.host, d.name))).size,
    })),
  );
  return { path: dir.display, entries, ...(wanted.length > shown.length && { truncated: true }) };
}

/** Atomic: the content goes to a temp file beside the target, is flushed, then renamed over it. */
export async function writeTextFile(file: WorkspacePath, content: string, createDirs: boolean, signal: AbortSignal) {
  const dir = dirname(file.host);
  if (createDirs) await mkdir(dir, { recursive: true });
  const existing = await lstat(file.host).catch(() => undefined);
  if (existing?.isDirectory()) throw new ToolFailed(`Is a directory: ${file.display}`);
  const temp = join(dir, `.${basename(file.host)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    await handle.writeFile(content, { encoding: 'utf8', signal });
    await handle.sync();
    await handle.close();
    await rename(temp, file.host);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  return { path: file.display, size: Buffer.byteLength(content, 'utf8') };
}

export async function deleteFile(file: WorkspacePath) {
  const stat = await lstat(file.host);
  if (stat.isDirectory()) throw new ToolFailed(`Is a directory: ${file.display}`);
  await unlink(file.host);
  return { path: file.display, deleted: true };
}
