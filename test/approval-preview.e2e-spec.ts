import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestGateway, WRITER_TOKEN } from './support/test-gateway';

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

describe('GET /api/approvals/{id}/preview: what approving would do, computed now', () => {
  const UPSTREAM_TOKEN = 'ghp_preview-secret-value-0123456789';
  const secretsDir = mkdtempSync(join(tmpdir(), 'agw-preview-secrets-'));
  const tokenFile = join(secretsDir, 'token');
  let gw: TestGateway;

  beforeAll(async () => {
    writeFileSync(tokenFile, `${UPSTREAM_TOKEN}\n`);
    gw = await new TestGateway({
      secrets: `  UPSTREAM_TOKEN: { from: file, path: "${tokenFile}" }`,
      extraTools: [
        `  create_issue:`,
        `    kind: http`,
        `    roles: [deployer]`,
        `    requires_approval: true`,
        // Port 9 (discard): a preview never connects anywhere.
        `    request: { method: POST, url: "http://127.0.0.1:9/repos/{owner}/issues", headers: { Authorization: "Bearer \${secret:UPSTREAM_TOKEN}", Accept: application/json } }`,
        `    allowed_hosts: [127.0.0.1]`,
        `    input_schema: { type: object, required: [owner, title], properties: { owner: { type: string }, title: { type: string }, body: { type: string } } }`,
      ].join('\n'),
    }).start();
  });
  afterAll(async () => {
    await gw.stop();
    rmSync(secretsDir, { recursive: true, force: true });
  });

  async function pending(tool: string, args: Record<string, unknown>): Promise<string> {
    const res = await gw.call(tool, args);
    expect(res.status).toBe(202);
    return res.body.approval_id;
  }
  const preview = (id: string, token?: string) => gw.asApprover(token).get(`/api/approvals/${id}/preview`);

  it('shows a write to an existing file as a unified diff of current → proposed, and changes nothing', async () => {
    writeFileSync(join(gw.workspace, 'config.ini'), 'name=demo\nmode=safe\nlevel=1\n');
    const id = await pending('write_file', { path: '/workspace/config.ini', content: 'name=demo\nmode=fast\nlevel=1\n' });

    const res = await preview(id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      kind: 'fs.write',
      approval_id: id,
      status: 'pending',
      path: '/workspace/config.ini',
      exists: true,
      current: { size: 28, sha256: sha256('name=demo\nmode=safe\nlevel=1\n') },
      proposed: { size: 28, sha256: sha256('name=demo\nmode=fast\nlevel=1\n') },
      warnings: [],
    });
    expect(res.body.diff).toContain('--- /workspace/config.ini\tcurrent');
    expect(res.body.diff).toContain('+++ /workspace/config.ini\tproposed');
    expect(res.body.diff).toContain('\n-mode=safe\n+mode=fast\n');
    expect(res.body.diff).toContain(' name=demo\n');
    // Read-only: the file is as it was, and the approval still waits.
    expect(readFileSync(join(gw.workspace, 'config.ini'), 'utf8')).toBe('name=demo\nmode=safe\nlevel=1\n');
    expect((await gw.asApprover().get(`/api/approvals/${id}`)).body.status).toBe('pending');
  });

  it('shows a new file as a diff from nothing, and warns when its folder is missing and create_dirs is not set', async () => {
    const id = await pending('write_file', { path: 'reports/q3.txt', content: 'total: 42\n' });
    const res = await preview(id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ kind: 'fs.write', path: '/workspace/reports/q3.txt', exists: false, current: null });
    expect(res.body.diff).toContain('--- /workspace/reports/q3.txt\tnew file');
    expect(res.body.diff).toContain('+total: 42');
    expect(res.body.warnings).toEqual([
      { code: 'parent_missing', message: 'The folder /workspace/reports does not exist and create_dirs is not set: the write would fail' },
    ]);
    expect(existsSync(join(gw.workspace, 'reports'))).toBe(false);

    const withDirs = await pending('write_file', { path: 'reports/q4.txt', content: 'total: 43\n', create_dirs: true });
    expect((await preview(withDirs)).body.warnings).toEqual([]);
    expect(existsSync(join(gw.workspace, 'reports'))).toBe(false);
  });

  it('summarizes binary content by size and SHA-256 instead of sending it', async () => {
    const binary = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01, 0xff, 0xfe]);
    writeFileSync(join(gw.workspace, 'logo.png'), binary);
    const id = await pending('write_file', { path: 'logo.png', content: 'now text\n' });
    const res = await preview(id);
    expect(res.body).toMatchObject({ exists: true, diff: null, current: { size: 8, sha256: sha256(binary) } });
    expect(res.body.warnings).toEqual([expect.objectContaining({ code: 'content_summarized' })]);
    expect(res.text).not.toContain('PNG');
  });

  it('summarizes a file larger than 256 KiB', async () => {
    const big = 'line of text\n'.repeat(30_000);
    writeFileSync(join(gw.workspace, 'big.log'), big);
    const id = await pending('write_file', { path: 'big.log', content: 'short\n' });
    const res = await preview(id);
    expect(res.body).toMatchObject({ diff: null, current: { size: big.length, sha256: sha256(big) } });
    expect(res.text.length).toBeLessThan(4096);
  });

  it('shows what a delete removes: size, first lines and SHA-256', async () => {
    const text = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n');
    writeFileSync(join(gw.workspace, 'old.log'), text);
    const id = await pending('delete_file', { path: '/workspace/old.log' });
    const res = await preview(id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ kind: 'fs.delete', path: '/workspace/old.log', exists: true, size: text.length, sha256: sha256(text), warnings: [] });
    expect(res.body.head.split('\n')).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 1}`));
    expect(existsSync(join(gw.workspace, 'old.log'))).toBe(true);
  });

  it('warns when the delete would find nothing, or a folder', async () => {
    const missing = await pending('delete_file', { path: 'gone.txt' });
    expect((await preview(missing)).body).toMatchObject({
      exists: false,
      warnings: [{ code: 'not_found', message: 'Nothing at /workspace/gone.txt: the delete would fail' }],
    });

    // Asked while it was nothing; a folder appeared there since.
    const becameFolder = await pending('delete_file', { path: 'later' });
    mkdirSync(join(gw.workspace, 'later'));
    const res = await preview(becameFolder);
    expect(res.body).toMatchObject({ exists: true, warnings: [expect.objectContaining({ code: 'directory_not_deletable' })] });
  });

  it('never reads through a folder that became a symlink out of the workspace', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'agw-outside-'));
    writeFileSync(join(outside, 'passwd'), 'SECRET-OUTSIDE-CONTENT');
    mkdirSync(join(gw.workspace, 'etc'));
    const id = await pending('delete_file', { path: 'etc/passwd' });
    rmSync(join(gw.workspace, 'etc'), { recursive: true });
    symlinkSync(outside, join(gw.workspace, 'etc'));
    try {
      const res = await preview(id);
      expect(res.status).toBe(200);
      expect(res.body.warnings).toEqual([expect.objectContaining({ code: 'path_outside_workspace' })]);
      expect(res.text).not.toContain('SECRET-OUTSIDE');
      expect(res.text).not.toContain(outside);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('does not show a file hard-linked to one outside the workspace that a write would replace, and says why', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'agw-outside-'));
    const secret = 'SECRET-HARDLINKED-CONTENT\n';
    writeFileSync(join(outside, 'shadow'), secret);
    writeFileSync(join(gw.workspace, 'linked.txt'), 'plain file\n');
    // Asked while it was a plain file (a hard-linked one is refused at once); linked since.
    const id = await pending('write_file', { path: 'linked.txt', content: 'replacement\n' });
    rmSync(join(gw.workspace, 'linked.txt'));
    linkSync(join(outside, 'shadow'), join(gw.workspace, 'linked.txt'));
    try {
      const res = await preview(id);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        kind: 'fs.write',
        path: '/workspace/linked.txt',
        exists: true,
        diff: null,
        current: null,
        proposed: { size: 12, sha256: sha256('replacement\n') },
        warnings: [
          {
            code: 'hard_linked_file',
            message: '/workspace/linked.txt has more than one hard link (another name may be outside the workspace): the call would be refused',
          },
        ],
      });
      expect(res.text).not.toContain('SECRET-HARDLINKED');
      expect(res.text).not.toContain(sha256(secret));
      expect(res.text).not.toContain(outside);
      expect(readFileSync(join(outside, 'shadow'), 'utf8')).toBe(secret);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('shows an http call as method, final URL, headers with ${secret:NAME} and body, never the secret value', async () => {
    const id = await pending('create_issue', { owner: 'acme corp', title: 'Broken <b>link</b>', body: `see ${UPSTREAM_TOKEN}` });
    const res = await preview(id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      kind: 'http',
      method: 'POST',
      url: 'http://127.0.0.1:9/repos/acme%20corp/issues',
      headers: { Authorization: 'Bearer ${secret:UPSTREAM_TOKEN}', Accept: 'application/json' },
      warnings: [],
    });
    expect(JSON.parse(res.body.body)).toEqual({ title: 'Broken <b>link</b>', body: expect.stringMatching(/^see \[REDACTED:secret:[0-9a-f]{8}\]$/) });
    expect(res.text).not.toContain(UPSTREAM_TOKEN);
  });

  it('answers 401 without a valid approver token, and a signed agent request is not enough', async () => {
    const id = await pending('write_file', { path: 'a.txt', content: 'a' });
    expect((await gw.http().get(`/api/approvals/${id}/preview`)).status).toBe(401);
    const wrong = await preview(id, 'not-a-real-token');
    expect(wrong.status).toBe(401);
    expect(wrong.body.status).toBe('unauthenticated');
    expect((await gw.get(`/api/approvals/${id}/preview`)).status).toBe(401);
  });

  it('answers 403 to an approver who may not decide that tool, and 404 for an unknown id', async () => {
    writeFileSync(join(gw.workspace, 'keep.txt'), 'private notes');
    const id = await pending('delete_file', { path: 'keep.txt' });
    const res = await preview(id, WRITER_TOKEN);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ status: 'denied', reason_code: 'approver_not_allowed_for_tool' });
    expect(res.text).not.toContain('private notes');

    const unknown = await preview('approv_does_not_exist');
    expect(unknown.status).toBe(404);
    expect(unknown.body.reason_code).toBe('not_found');
  });

  it('leaves an audit record for every preview', async () => {
    const id = await pending('write_file', { path: 'audited.txt', content: 'x' });
    expect((await preview(id)).status).toBe(200);
    expect(gw.auditRecords().at(-1)).toMatchObject({ event: 'request', path: `/api/approvals/${id}/preview`, http_status: 200, approver_id: 'admin' });
    expect((await preview(id, WRITER_TOKEN.slice(1))).status).toBe(401);
    expect(gw.auditRecords().at(-1)).toMatchObject({ path: `/api/approvals/${id}/preview`, http_status: 401 });
  });
});
