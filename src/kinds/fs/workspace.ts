import { closeSync, constants, lstatSync, mkdirSync, openSync, readlinkSync, realpathSync, type Stats } from 'node:fs';
import { lstat, readdir, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { PolicyDenied } from '../../core/errors';

/** A path inside the workspace: where it is on the host, and how the agent may be shown it. */
export interface WorkspacePath {
  /** Canonical host path (symlinks resolved). Never shown to a caller. */
  host: string;
  /** `/workspace/…`, the only form that appears in results and errors. */
  display: string;
}

const PREFIX = '/workspace';
/** Linux: where each open descriptor of this process can be reached and read as a path. */
export const DESCRIPTORS = '/proc/self/fd';
const DIRECTORY = constants.O_RDONLY | constants.O_DIRECTORY;
/** The gateway's own temp files (atomic writes): the only names the start-up sweep removes. */
const TEMP_FILE = /^\.agent-gateway-[0-9a-f]{24}\.tmp$/;
const SWEEP_MAX_ENTRIES = 100_000;
const SWEEP_MAX_DEPTH = 64;
// File times come from the kernel's coarse clock, up to a tick behind Date.now().
const CLOCK_SLACK_MS = 50;

function outside(): PolicyDenied {
  return new PolicyDenied('path_outside_workspace', 'Path is outside the workspace');
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

export function tempFileName(): string {
  return `.agent-gateway-${randomBytes(12).toString('hex')}.tmp`;
}

/**
 * The entry `name` inside the directory open as `fd` (or that directory itself): Node has no
 * openat(), and this path resolves through the descriptor, not through the directory's name.
 */
export function at(fd: number, name?: string): string {
  return name === undefined ? `${DESCRIPTORS}/${fd}` : `${DESCRIPTORS}/${fd}/${name}`;
}

/** fs.write and fs.delete act on one name of a file; another name (a hard link) may be outside. */
export function refuseHardLinked(stat: Stats | undefined, display: string): void {
  if (stat?.isFile() && stat.nlink > 1) {
    throw new PolicyDenied('hard_linked_file', `${display} has more than one hard link (another name may be outside the workspace)`);
  }
}

/** fs.delete removes a file or a symlink itself, never a directory, never the workspace root. */
export function refuseUndeletable(stat: Stats | undefined, entry: WorkspacePath): void {
  if (entry.display === PREFIX) throw new PolicyDenied('directory_not_deletable', 'The workspace root cannot be deleted');
  if (stat?.isDirectory()) throw new PolicyDenied('directory_not_deletable', `fs.delete deletes files only: ${entry.display} is a directory`);
  refuseHardLinked(stat, entry.display);
}

/** lstat, or undefined when it fails (nothing there): for checks that execution repeats. */
export function lstatIfExists(hostPath: string): Stats | undefined {
  try {
    return lstatSync(hostPath);
  } catch {
    return undefined;
  }
}

/**
 * The sandbox root that file tools see as /workspace (GATEWAY_WORKSPACE).
 *
 * confine() checks a path string; what a tool then opens is checked again through its descriptor
 * (open(), openDirectory()), because a local process may swap a directory for a symlink in between.
 */
export class Workspace {
  readonly root: string;
  private readonly openedAt = Date.now();

  constructor(root: string) {
    mkdirSync(root, { recursive: true });
    this.root = realpathSync(root);
  }

  /**
   * Maps an agent's path into the workspace, or throws 403 path_outside_workspace.
   * `..` segments, NUL bytes, absolute paths other than /workspace/…, and symlinks (or dangling
   * symlinks) that lead out are all refused. The result has every existing symlink resolved.
   * Synchronous on purpose: realpath(3) and lstat on a local disk take microseconds, less than a
   * hop through the libuv thread pool costs (see README, Performance).
   */
  confine(agentPath: string): WorkspacePath {
    return this.resolveExisting(this.lexical(agentPath));
  }

  /**
   * The directory entry a path names (fs.delete): a symlink there is the link itself, not its
   * target. The target is confined too, so a link that leads out is refused as everywhere else.
   */
  confineEntry(agentPath: string): WorkspacePath {
    const lexical = this.lexical(agentPath);
    const target = this.resolveExisting(lexical);
    if (lexical === this.root) return target;
    const parent = this.resolveExisting(dirname(lexical));
    const host = join(parent.host, basename(lexical));
    return { host, display: this.display(host) };
  }

  /**
   * Opens a path confine() returned without following a final symlink, then checks where the
   * descriptor really is: a directory swapped for a symlink after confine() is caught here.
   */
  open(hostPath: string, flags: number): number {
    let fd: number;
    try {
      fd = openSync(hostPath, flags | constants.O_NOFOLLOW);
    } catch (err) {
      throw appearedLink(err, hostPath) ? outside() : err;
    }
    try {
      this.checkDescriptor(fd);
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /**
   * Opens the directory `hostPath` (from confine()) like open(). With `create`, the missing
   * directories below the deepest existing one are made and opened one by one, each from its
   * parent's descriptor without following links.
   */
  openDirectory(hostPath: string, create: boolean): number {
    const missing: string[] = [];
    let existing = hostPath;
    let fd: number;
    for (;;) {
      try {
        fd = this.open(existing, DIRECTORY);
        break;
      } catch (err) {
        if (!create || errno(err) !== 'ENOENT' || existing === this.root) throw err;
        missing.unshift(basename(existing));
        existing = dirname(existing);
      }
    }
    try {
      for (const name of missing) {
        try {
          mkdirSync(at(fd, name));
        } catch (err) {
          if (errno(err) !== 'EEXIST') throw err;
        }
        let child: number;
        try {
          child = openSync(at(fd, name), DIRECTORY | constants.O_NOFOLLOW);
        } catch (err) {
          throw appearedLink(err, at(fd, name)) ? outside() : err;
        }
        closeSync(fd);
        fd = child;
      }
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Throws path_outside_workspace unless the open descriptor `fd` is inside the workspace now. */
  private checkDescriptor(fd: number): void {
    let real: string;
    try {
      real = readlinkSync(at(fd));
    } catch {
      throw outside();
    }
    if (!this.contains(real)) throw outside();
  }

  /**
   * Removes the temp files a crash left behind (tempFileName(), last changed before this process
   * started), anywhere in the workspace. Bounded: at most 100,000 entries and 64 levels, walked
   * through descriptors without following links. Resolves to what it did.
   */
  async sweepTempFiles(signal: AbortSignal): Promise<{ removed: number; complete: boolean }> {
    const before = this.openedAt - CLOCK_SLACK_MS;
    let budget = SWEEP_MAX_ENTRIES;
    let removed = 0;
    const sweep = async (dirFd: number, depth: number): Promise<void> => {
      const entries = await readdir(at(dirFd), { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (signal.aborted || --budget < 0) return;
        const path = at(dirFd, entry.name);
        if (entry.isFile() && TEMP_FILE.test(entry.name)) {
          const stat = await lstat(path).catch(() => undefined);
          if (
            stat &&
            stat.mtimeMs < before &&
            (await unlink(path).then(
              () => true,
              () => false,
            ))
          )
            removed += 1;
        } else if (entry.isDirectory() && depth < SWEEP_MAX_DEPTH) {
          let fd: number;
          try {
            fd = openSync(path, DIRECTORY | constants.O_NOFOLLOW);
          } catch {
            continue;
          }
          try {
            await sweep(fd, depth + 1);
          } finally {
            closeSync(fd);
          }
        }
      }
    };
    const rootFd = this.open(this.root, DIRECTORY);
    try {
      await sweep(rootFd, 0);
    } finally {
      closeSync(rootFd);
    }
    return { removed, complete: budget >= 0 };
  }

  /** The host path an agent's path names, before any symlink is resolved; throws if it leaves. */
  private lexical(agentPath: string): string {
    if (agentPath.includes('\0')) throw outside();
    let relativePath: string;
    if (agentPath === PREFIX || agentPath.startsWith(`${PREFIX}/`)) relativePath = agentPath.slice(PREFIX.length);
    else if (agentPath.startsWith('/')) throw outside();
    else relativePath = agentPath;
    if (relativePath.split('/').includes('..')) throw outside();
    const lexical = resolve(this.root, `.${sep}${relativePath}`);
    if (!this.contains(lexical)) throw outside();
    return lexical;
  }

  /** Resolves the longest existing prefix; the part that does not exist yet cannot be a symlink. */
  private resolveExisting(lexical: string): WorkspacePath {
    let existing = lexical;
    const missing: string[] = [];
    for (;;) {
      try {
        const real = realpathSync.native(existing);
        if (!this.contains(real)) throw outside();
        const host = missing.length > 0 ? join(real, ...missing.reverse()) : real;
        return { host, display: this.display(host) };
      } catch (err) {
        const code = errno(err);
        // Missing (or under a file): walk up. Anything else (a symlink loop, no access) is refused.
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err instanceof PolicyDenied ? err : outside();
        if (isSymlink(existing)) throw outside();
        if (existing === this.root) throw outside();
        missing.push(basename(existing));
        existing = dirname(existing);
      }
    }
  }

  private contains(hostPath: string): boolean {
    return hostPath === this.root || hostPath.startsWith(this.root + sep);
  }

  /** `hostPath` is inside the root (contains() said so): its display is what follows the root. */
  private display(hostPath: string): string {
    const rel = hostPath.slice(this.root.length + 1);
    return rel ? `${PREFIX}/${sep === '/' ? rel : rel.split(sep).join('/')}` : PREFIX;
  }
}

/**
 * An open with O_NOFOLLOW failed on a symlink (ELOOP, or ENOTDIR with O_DIRECTORY): confine()
 * resolved every link, so this one appeared since.
 */
function appearedLink(err: unknown, hostPath: string): boolean {
  return errno(err) === 'ELOOP' || (errno(err) === 'ENOTDIR' && isSymlink(hostPath));
}

function isSymlink(hostPath: string): boolean {
  try {
    return lstatSync(hostPath).isSymbolicLink();
  } catch {
    return false;
  }
}
