import { lstatSync, mkdirSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { PolicyDenied } from '../common/errors';

/** A path inside the workspace: where it is on the host, and how the agent may be shown it. */
export interface WorkspacePath {
  /** Canonical host path (symlinks resolved). Never shown to a caller. */
  host: string;
  /** `/workspace/…`, the only form that appears in results and errors. */
  display: string;
}

const PREFIX = '/workspace';

function outside(): PolicyDenied {
  return new PolicyDenied('path_outside_workspace', 'Path is outside the workspace');
}

/** The sandbox root that file tools see as /workspace (API.md §5). */
export class Workspace {
  readonly root: string;

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
    if (agentPath.includes('\0')) throw outside();
    let relativePath: string;
    if (agentPath === PREFIX || agentPath.startsWith(`${PREFIX}/`)) relativePath = agentPath.slice(PREFIX.length);
    else if (agentPath.startsWith('/')) throw outside();
    else relativePath = agentPath;
    if (relativePath.split('/').includes('..')) throw outside();

    const lexical = resolve(this.root, `.${sep}${relativePath}`);
    if (!this.contains(lexical)) throw outside();

    // Resolve the longest existing prefix; the part that does not exist yet cannot be a symlink.
    let existing = lexical;
    const missing: string[] = [];
    for (;;) {
      try {
        const real = realpathSync.native(existing);
        if (!this.contains(real)) throw outside();
        const host = missing.length > 0 ? join(real, ...missing.reverse()) : real;
        return { host, display: this.display(host) };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Missing (or under a file): walk up. Anything else (a symlink loop, no access) is refused.
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err instanceof PolicyDenied ? err : outside();
        if (isDanglingLink(existing)) throw outside();
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

function isDanglingLink(hostPath: string): boolean {
  try {
    return lstatSync(hostPath).isSymbolicLink();
  } catch {
    return false;
  }
}
