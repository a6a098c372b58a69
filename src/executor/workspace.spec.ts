import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyDenied } from '../common/errors';
import { Workspace } from './workspace';

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
});
