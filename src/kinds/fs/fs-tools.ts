import { closeSync, constants, fstatSync, read, readSync, renameSync, unlinkSync } from 'node:fs';
import { promisify } from 'node:util';
import { lstat, open, readdir, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { ToolFailed } from '../../core/errors';
import { at, refuseHardLinked, refuseUndeletable, tempFileName, type Workspace, type WorkspacePath } from './workspace';

export const MAX_READ_BYTES = 1024 * 1024;
const MAX_LIST_ENTRIES = 10_000;
const SYNC_READ_BYTES = 64 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const readAsync = promisify(read);

// Everything here works through descriptors the Workspace has checked (Workspace.open), never by
// reopening a path string that a local process could have changed since it was confined.

/**
 * Opened without blocking (O_NONBLOCK), so a FIFO or device in the workspace is refused at once
 * instead of holding the call. Small files are read synchronously: a page-cache read of a few KiB
 * costs less than a hop through the libuv thread pool; larger ones go through the pool.
 */
export async function readTextFile(workspace: Workspace, file: WorkspacePath, signal: AbortSignal) {
  const fd = workspace.open(file.host, constants.O_RDONLY | constants.O_NONBLOCK);
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

export async function listDirectory(workspace: Workspace, dir: WorkspacePath, signal: AbortSignal) {
  const fd = workspace.open(dir.host, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    const dirents = await readdir(at(fd), { withFileTypes: true });
    signal.throwIfAborted();
    const wanted = dirents.filter((d) => d.isFile() || d.isDirectory()).sort((a, b) => (a.name < b.name ? -1 : 1));
    const shown = wanted.slice(0, MAX_LIST_ENTRIES);
    const entries = await Promise.all(
      shown.map(async (d) => ({
        name: d.name,
        type: d.isDirectory() ? ('dir' as const) : ('file' as const),
        size: d.isDirectory() ? 0 : (await lstat(at(fd, d.name))).size,
      })),
    );
    return { path: dir.display, entries, ...(wanted.length > shown.length && { truncated: true }) };
  } finally {
    closeSync(fd);
  }
}

/**
 * Atomic: the content goes to a temp file created in the checked directory, is flushed, checked to
 * still be that file with one name, then renamed over the target within the same directory.
 * Abandoned once `signal` is aborted: a write answered 504 tool_timeout never lands.
 */
export async function writeTextFile(workspace: Workspace, file: WorkspacePath, content: string, createDirs: boolean, signal: AbortSignal) {
  signal.throwIfAborted();
  if (file.host === workspace.root) throw new ToolFailed(`Is a directory: ${file.display}`);
  const dirFd = workspace.openDirectory(dirname(file.host), createDirs);
  try {
    const target = at(dirFd, basename(file.host));
    const existing = await lstat(target).catch(() => undefined);
    if (existing?.isDirectory()) throw new ToolFailed(`Is a directory: ${file.display}`);
    refuseHardLinked(existing, file.display);
    const temp = at(dirFd, tempFileName());
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      await handle.writeFile(content, { encoding: 'utf8', signal });
      await handle.sync();
      const written = await handle.stat();
      const named = await lstat(temp);
      if (named.ino !== written.ino || named.dev !== written.dev || written.nlink !== 1) {
        throw new ToolFailed(`The file was changed by another process during the write: ${file.display}`);
      }
      await handle.close();
      commitUnlessAborted(signal, () => renameSync(temp, target));
    } catch (err) {
      await handle.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  } finally {
    closeSync(dirFd);
  }
  return { path: file.display, size: Buffer.byteLength(content, 'utf8') };
}

/** Removes the entry itself: a symlink is unlinked, its target is left alone. Not once `signal` is aborted. */
export async function deleteEntry(workspace: Workspace, entry: WorkspacePath, signal: AbortSignal) {
  signal.throwIfAborted();
  refuseUndeletable(undefined, entry);
  const dirFd = workspace.openDirectory(dirname(entry.host), false);
  try {
    const path = at(dirFd, basename(entry.host));
    refuseUndeletable(await lstat(path), entry);
    commitUnlessAborted(signal, () => unlinkSync(path));
  } finally {
    closeSync(dirFd);
  }
  return { path: entry.display, deleted: true };
}

/**
 * The step that changes the workspace, run only if the call has not timed out. Synchronous with the
 * check on purpose: the executor's timeout is a timer, which cannot fire between the two, so the
 * call is either answered 504 with nothing changed or answered with what was done.
 */
function commitUnlessAborted(signal: AbortSignal, change: () => void): void {
  signal.throwIfAborted();
  change();
}
