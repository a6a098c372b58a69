import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestGateway } from './support/test-gateway';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * "Trojan Source": bidirectional controls make an editor draw
 *   /* begin admins only *\/ if (isAdmin) { grantAll(); /* end admins only *\/ }
 * while a compiler reads a comment, an unguarded grantAll(), and another comment.
 */
const RLO = '\u202E';
const LRI = '\u2066';
const PDI = '\u2069';
const TROJAN = [
  'function grant(isAdmin) {',
  `  /*${RLO} } ${LRI}if (isAdmin)${PDI} ${LRI} begin admins only */`,
  '    grantAll();',
  `  /* end admins only ${RLO} { ${LRI}*/`,
  '}',
  '',
].join('\n');
const RAW_HIDDEN = /[\u202A-\u202E\u2066-\u2069\u200B-\u200F\u2028\u2029\uFEFF]/;

describe('Trojan Source: what the approver sees is what runs', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await new TestGateway().start();
  });
  afterAll(() => gw.stop());

  it('shows bidi controls in a write as <U+XXXX> in the preview, the detail view and the listing, warns naming them, and writes the bytes asked for', async () => {
    const asked = await gw.call('write_file', { path: 'grant.js', content: TROJAN });
    expect(asked.status).toBe(202);
    const id = asked.body.approval_id;

    const preview = await gw.asApprover().get(`/api/approvals/${id}/preview`);
    expect(preview.status).toBe(200);
    expect(preview.text).not.toMatch(RAW_HIDDEN);
    expect(preview.body.diff).toContain(`+  /*<U+202E> } <U+2066>if (isAdmin)<U+2069> <U+2066> begin admins only */\n+    grantAll();\n`);
    expect(preview.body.proposed).toEqual({ size: Buffer.byteLength(TROJAN), sha256: sha256(TROJAN) });
    const [first] = preview.body.warnings;
    expect(first.code).toBe('hidden_characters');
    expect(first.message).toMatch(
      /^Hidden or direction-changing characters, shown here as <U\+XXXX>: U\+202E \(right-to-left override\) in argument content, line 2;/,
    );
    expect(first.characters).toEqual([
      { character: 'U+202E', name: 'right-to-left override', where: 'argument content, line 2', count: 1 },
      { character: 'U+2066', name: 'left-to-right isolate', where: 'argument content, line 2', count: 2 },
      { character: 'U+2069', name: 'pop directional isolate', where: 'argument content, line 2', count: 1 },
      { character: 'U+202E', name: 'right-to-left override', where: 'argument content, line 4', count: 1 },
      { character: 'U+2066', name: 'left-to-right isolate', where: 'argument content, line 4', count: 1 },
    ]);

    // The detail view: the exact arguments, the same JSON with visible escapes, and what is hidden where.
    const detail = await gw.asApprover().get(`/api/approvals/${id}`);
    expect(detail.status).toBe(200);
    expect(detail.body.arguments_shown).toBe('exact');
    expect(detail.body.arguments.content).toBe(TROJAN);
    expect(detail.body.arguments_json).toContain('/*\\u202e } \\u2066if (isAdmin)\\u2069 \\u2066 begin admins only */');
    expect(detail.body.arguments_json).not.toMatch(RAW_HIDDEN);
    expect(sha256(JSON.stringify(JSON.parse(detail.body.arguments_json)))).toBe(detail.body.arguments_sha256);
    expect(sha256(JSON.stringify(detail.body.arguments))).toBe(detail.body.arguments_sha256);
    expect(detail.body.hidden_characters).toEqual(first.characters);

    const listing = await gw.asApprover().get('/api/approvals?status=pending');
    const listed = listing.body.approvals.find((a: { approval_id: string }) => a.approval_id === id);
    expect(listed.arguments.content).toContain('/*<U+202E> } <U+2066>if (isAdmin)<U+2069>');
    expect(listed.hidden_characters).toEqual(first.characters);
    expect(JSON.stringify(listed)).not.toMatch(RAW_HIDDEN);

    // Only views are escaped: what runs is byte for byte what was asked and approved.
    expect((await gw.asApprover().decide(id, true)).status).toBe(200);
    expect(readFileSync(join(gw.workspace, 'grant.js'), 'utf8')).toBe(TROJAN);
    const approval = gw.auditRecords().find((r) => r.event === 'approval' && r.approval_id === id)!;
    expect(approval.arguments_sha256).toBe(detail.body.arguments_sha256);
  });

  it('names hidden characters in the current file, the path and a delete, and a carriage return that would draw over a line', async () => {
    writeFileSync(join(gw.workspace, 'policy.txt'), `allow=none\nnote=ok\u200B\n`);
    const edit = await gw.call('write_file', { path: 'policy.txt', content: `allow=none\rallow=all\nnote=ok\u200B\n` });
    const preview = await gw.asApprover().get(`/api/approvals/${edit.body.approval_id}/preview`);
    expect(preview.body.diff).toContain('+allow=none<U+000D>allow=all\n');
    expect(preview.body.diff).toContain(' note=ok<U+200B>\n');
    expect(preview.body.warnings[0].characters).toEqual([
      { character: 'U+000D', name: 'control character', where: 'argument content, line 1', count: 1 },
      { character: 'U+200B', name: 'zero width space', where: 'argument content, line 2', count: 1 },
      { character: 'U+200B', name: 'zero width space', where: 'current file, line 2', count: 1 },
    ]);

    const named = `invoice${RLO}txt.exe`;
    writeFileSync(join(gw.workspace, named), `first${LRI}line\n`);
    const remove = await gw.call('delete_file', { path: named });
    expect(remove.status).toBe(202);
    const deletion = await gw.asApprover().get(`/api/approvals/${remove.body.approval_id}/preview`);
    expect(deletion.text).not.toMatch(RAW_HIDDEN);
    expect(deletion.body).toMatchObject({ path: '/workspace/invoice<U+202E>txt.exe', head: 'first<U+2066>line\n' });
    expect(deletion.body.warnings[0].characters).toEqual([
      { character: 'U+202E', name: 'right-to-left override', where: 'argument path', count: 1 },
      { character: 'U+2066', name: 'left-to-right isolate', where: 'file, line 1', count: 1 },
    ]);
  });

  it('adds no warning to plain text', async () => {
    const plain = await gw.call('write_file', { path: 'plain.txt', content: 'naïve café, 東京\r\n\tok\n' });
    const preview = await gw.asApprover().get(`/api/approvals/${plain.body.approval_id}/preview`);
    expect(preview.body.warnings).toEqual([]);
    expect((await gw.asApprover().get(`/api/approvals/${plain.body.approval_id}`)).body.hidden_characters).toEqual([]);
  });
});
