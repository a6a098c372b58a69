import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyDenied } from '../../core/errors';
import { at, Workspace } from './workspace';

describe('Workspace.confine (path confinement)', () => {
  let root: string;
  let ws: Workspace;

  beforeAll(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'ws-spec-')));
    mkdirSync(join(root, 'ws', 'sub'), { recursive: true });
    writeFileSync(join(root, 'ws', 'sub', 'f.txt'), 'x');
    writeFileSync(join(root, 'outside.txt'), 'x');
    symlinkSync(join(root, 'outside.txt'), join(root, 'ws', 'out-link'));
    symlinkSync(root, join(root, 'ws', 'out-dir'));
    symlinkSync(join(root, 'ws', 'sub'), join(root, 'ws', 'in-dir'));
    symlinkSync(join(root, 'nowhere'), join(root, 'ws', 'dangling'));
    symlinkSync(join(root, 'ws', 'loop'), join(root, 'ws', 'loop'));
    ws = new Workspace(join(root, 'ws'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it.each([
    ['/workspace/sub/f.txt', 'sub/f.txt', '/workspace/sub/f.txt'],
    ['sub/f.txt', 'sub/f.txt', '/workspace/sub/f.txt'],
    ['./sub//f.txt', 'sub/f.txt', '/workspace/sub/f.txt'],
    ['/workspace', '', '/workspace'],
    ['/workspace/', '', '/workspace'],
    ['.', '', '/workspace'],
    ['new/deeper/file.txt', 'new/deeper/file.txt', '/workspace/new/deeper/file.txt'],
    ['in-dir/f.txt', 'sub/f.txt', '/workspace/sub/f.txt'],
    ['sub/f.txt/below', 'sub/f.txt/below', '/workspace/sub/f.txt/below'],
  ])('maps %j inside the workspace', (input, hostRel, display) => {
    const p = ws.confine(input);
    expect(p.host).toBe(hostRel ? join(root, 'ws', hostRel) : join(root, 'ws'));
    expect(p.display).toBe(display);
  });

  it.each([
    ['..'],
    ['../outside.txt'],
    ['sub/../../outside.txt'],
    ['/workspace/..'],
    ['/etc/passwd'],
    ['/workspacefoo/x'],
    ['sub/f.txt\0'],
    ['out-link'],
    ['out-dir/outside.txt'],
    ['out-dir/new-file'],
    ['dangling'],
    ['loop'],
  ])('refuses %j', (input) => {
    expect(() => ws.confine(input)).toThrow(PolicyDenied);
    expect(() => ws.confine(input)).toThrow(expect.objectContaining({ reasonCode: 'path_outside_workspace' }));
  });

  describe('what is opened is checked again (a path swapped after confine)', () => {
    const swapped = (name: string) => {
      mkdirSync(join(root, 'ws', name));
      const confined = ws.confine(`${name}/f.txt`);
      renameSync(join(root, 'ws', name), join(root, 'ws', `${name}.parked`));
      symlinkSync(root, join(root, 'ws', name));
      writeFileSync(join(root, 'f.txt'), 'outside');
      return confined;
    };

    it('refuses a file opened through a directory that became a symlink', () => {
      const confined = swapped('swap-read');
      expect(() => ws.open(confined.host, constants.O_RDONLY)).toThrow(expect.objectContaining({ reasonCode: 'path_outside_workspace' }));
    });

    it('refuses a directory that became a symlink, and creates nothing below it', () => {
      const confined = ws.confine('swap-mk/new/deeper/f.txt');
      symlinkSync(root, join(root, 'ws', 'swap-mk'));
      expect(() => ws.openDirectory(join(confined.host, '..'), true)).toThrow(expect.objectContaining({ reasonCode: 'path_outside_workspace' }));
      expect(existsSync(join(root, 'new'))).toBe(false);
    });

    it('creates missing directories below a checked one and opens the deepest', () => {
      const confined = ws.confine('made/a/b/f.txt');
      const fd = ws.openDirectory(join(confined.host, '..'), true);
      writeFileSync(at(fd, 'f.txt'), 'here');
      closeSync(fd);
      expect(readFileSync(join(root, 'ws', 'made', 'a', 'b', 'f.txt'), 'utf8')).toBe('here');
    });
  });

  describe('confineEntry (what fs.delete acts on)', () => {
    it('is the symlink itself, not its target', () => {
      expect(ws.confineEntry('in-dir')).toEqual({ host: join(root, 'ws', 'in-dir'), display: '/workspace/in-dir' });
    });

    it('still refuses a symlink that leads out', () => {
      expect(() => ws.confineEntry('out-link')).toThrow(expect.objectContaining({ reasonCode: 'path_outside_workspace' }));
    });
  });
});
