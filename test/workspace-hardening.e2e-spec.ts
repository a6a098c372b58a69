import { spawn } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestGateway } from './support/test-gateway';

/**
 * Swaps `box` (a directory) for a symlink that leads out of the workspace and back, as fast as it
 * can, for `ms` milliseconds; prints "ready" when it starts and the number of swaps when it stops.
 * Each round restores the directory, so the workspace is whole when it exits.
 */
const SWAPPER = `
const { renameSync, symlinkSync } = require('node:fs');
const [box, parked, link, outside, ms] = process.argv.slice(1);
symlinkSync(outside, link);
process.stdout.write('ready\\n');
let swaps = 0;
for (const end = Date.now() + Number(ms); Date.now() < end; swaps++) {
  renameSync(box, parked);
  renameSync(link, box);
  renameSync(box, link);
  renameSync(parked, box);
}
process.stdout.write(swaps + '\\n');
`;

type Res = { status: number; body: Record<string, any> };

describe('Workspace hardening: races, links, deletes, temp files', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await new TestGateway().start();
  });
  afterAll(() => gw.stop());

  const expectDenied = (res: Res, reason: string) => {
    expect({ http: res.status, status: res.body.status, reason_code: res.body.reason_code }).toEqual({ http: 403, status: 'denied', reason_code: reason });
    expect(JSON.stringify(res.body)).not.toContain(gw.root);
  };

  it('never reads, writes or deletes outside while another process swaps a directory for a symlink', async () => {
    const outside = join(gw.root, 'outside');
    const box = join(gw.workspace, 'box');
    mkdirSync(outside);
    mkdirSync(box);
    const VICTIMS = 400;
    for (const dir of [outside, box]) {
      writeFileSync(join(dir, 'f.txt'), dir === box ? 'inside' : 'OUTSIDE SECRET');
      for (let i = 0; i < VICTIMS; i++) writeFileSync(join(dir, `d${i}.txt`), 'victim');
    }
    writeFileSync(join(outside, 'only-outside.txt'), 'x');
    const outsideBefore = readdirSync(outside).sort();

    const swapper = spawn(process.execPath, ['-e', SWAPPER, box, join(gw.workspace, 'parked'), join(gw.workspace, 'box-link'), outside, '1500']);
    let output = '';
    swapper.stdout.on('data', (chunk) => (output += chunk));
    const exited = new Promise<void>((resolve) => swapper.on('exit', () => resolve()));
    let running = true;
    void exited.then(() => (running = false));
    try {
      while (!output.includes('ready')) await new Promise((resolve) => setTimeout(resolve, 5));
      const answers: Res[] = [];
      for (let i = 0; running; i++) {
        answers.push(
          ...(await Promise.all([
            gw.call('read_file', { path: 'box/f.txt' }),
            gw.call('read_file', { path: '/workspace/box/f.txt' }),
            gw.call('list_dir', { path: 'box' }),
            gw.call('write_now', { path: `box/w${i}.txt`, content: 'written' }),
            gw.call('delete_now', { path: `box/d${i % VICTIMS}.txt` }),
          ])),
        );
      }
      await exited;
      const swaps = Number(output.split('\n')[1]);
      expect(swaps).toBeGreaterThan(100);
      expect(answers.length).toBeGreaterThanOrEqual(5);
      for (const answer of answers) {
        const text = JSON.stringify(answer.body);
        expect(text).not.toContain('OUTSIDE SECRET');
        expect(text).not.toContain('only-outside.txt');
        expect(text).not.toContain(gw.root);
      }
      expect(readdirSync(outside).sort()).toEqual(outsideBefore);
      expect(readFileSync(join(outside, 'f.txt'), 'utf8')).toBe('OUTSIDE SECRET');
    } finally {
      swapper.kill('SIGKILL');
      await exited;
    }
  });

  it('deletes a symlink itself, not the file or directory it points to', async () => {
    writeFileSync(join(gw.workspace, 'target.txt'), 'keep me');
    mkdirSync(join(gw.workspace, 'target-dir'));
    symlinkSync(join(gw.workspace, 'target.txt'), join(gw.workspace, 'file-link'));
    symlinkSync(join(gw.workspace, 'target-dir'), join(gw.workspace, 'dir-link'));
    for (const name of ['file-link', 'dir-link']) {
      const res = await gw.call('delete_now', { path: name });
      expect(res.status).toBe(200);
      expect(res.body.result).toEqual({ path: `/workspace/${name}`, deleted: true });
      expect(existsSync(join(gw.workspace, name))).toBe(false);
    }
    expect(readFileSync(join(gw.workspace, 'target.txt'), 'utf8')).toBe('keep me');
    expect(lstatSync(join(gw.workspace, 'target-dir')).isDirectory()).toBe(true);
  });

  it('refuses to write or delete a file with another hard link, before approval is asked', async () => {
    writeFileSync(join(gw.root, 'elsewhere.txt'), 'original');
    linkSync(join(gw.root, 'elsewhere.txt'), join(gw.workspace, 'linked.txt'));
    expectDenied(await gw.call('write_file', { path: 'linked.txt', content: 'changed' }), 'hard_linked_file');
    expectDenied(await gw.call('write_now', { path: 'linked.txt', content: 'changed' }), 'hard_linked_file');
    expectDenied(await gw.call('delete_file', { path: 'linked.txt' }), 'hard_linked_file');
    expectDenied(await gw.call('delete_now', { path: 'linked.txt' }), 'hard_linked_file');
    expect(readFileSync(join(gw.workspace, 'linked.txt'), 'utf8')).toBe('original');
    expect(lstatSync(join(gw.root, 'elsewhere.txt')).nlink).toBe(2);
  });

  it.each(['.', '/workspace', '/workspace/', 'a-dir', '/workspace/a-dir/'])('refuses to delete %j (a directory) before approval is asked', async (path) => {
    mkdirSync(join(gw.workspace, 'a-dir'), { recursive: true });
    const res = await gw.call('delete_file', { path });
    expectDenied(res, 'directory_not_deletable');
    expect(res.body.error).toBe(
      path.includes('a-dir') ? 'fs.delete deletes files only: /workspace/a-dir is a directory' : 'The workspace root cannot be deleted',
    );
    expect(existsSync(join(gw.workspace, 'a-dir'))).toBe(true);
  });

  it('sweeps temp files left by an interrupted write at start, and only those', async () => {
    mkdirSync(join(gw.workspace, 'deep', 'er'), { recursive: true });
    mkdirSync(join(gw.root, 'not-ours'));
    symlinkSync(join(gw.root, 'not-ours'), join(gw.workspace, 'deep', 'out-link'));
    const leftover = (dir: string) => join(dir, `.agent-gateway-${'0123456789abcdef01234567'}.tmp`);
    const files = {
      gone: [leftover(gw.workspace), leftover(join(gw.workspace, 'deep', 'er'))],
      kept: [join(gw.workspace, '.notes.txt.0123456789ab.tmp'), join(gw.workspace, '.agent-gateway-notes.tmp'), leftover(join(gw.root, 'not-ours'))],
    };
    const anHourAgo = new Date(Date.now() - 3600_000);
    for (const file of [...files.gone, ...files.kept]) {
      writeFileSync(file, 'partial');
      utimesSync(file, anHourAgo, anHourAgo);
    }
    await gw.restart();
    for (let waited = 0; files.gone.some(existsSync) && waited < 2000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(files.gone.filter(existsSync)).toEqual([]);
    expect(files.kept.filter((file) => !existsSync(file))).toEqual([]);
  });
});
