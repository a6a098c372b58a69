import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AUDIT_ARGUMENTS_MAX_BYTES, CHECKPOINT_EVERY_RECORDS } from '../src/audit/audit-log.service';
import { rebuildAuditIndex, verifyAuditLog } from '../src/audit/audit-verify';
import { AUDIT_KEY, TestGateway } from './support/test-gateway';

const run = promisify(execFile);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const key = Buffer.from(AUDIT_KEY);
const INDEX_FILES = ['audit-index.db', 'audit-index.db-wal', 'audit-index.db-shm'];

/** `npm run audit:verify -- <args>` as an operator runs it, with GATEWAY_AUDIT_KEY set to `auditKey` ('' = unset). */
async function auditVerify(gw: TestGateway, args: string[], auditKey: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, GATEWAY_DATA_DIR: gw.dataDir, GATEWAY_AUDIT_LOG: gw.auditFile, GATEWAY_AUDIT_KEY: auditKey };
  try {
    const { stdout, stderr } = await run('npx', ['tsx', 'src/cli/audit-verify.ts', ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** What someone with write access to the data dir but without the key can do: reseal records with plain SHA-256. */
function resealWithoutKey(records: Array<Record<string, unknown>>, seal?: string): string {
  let prev = '0'.repeat(64);
  return records
    .map((record, i) => {
      const { hash: _dropped, ...rest } = record;
      const body = JSON.stringify({ ...rest, seq: i + 1, prev_hash: prev, ...(seal && { seal }) });
      prev = sha256(body);
      return `${body.slice(0, -1)},"hash":"${prev}"}\n`;
    })
    .join('');
}

const deleteIndex = (gw: TestGateway) => INDEX_FILES.forEach((f) => rmSync(join(gw.dataDir, f), { force: true }));

describe('Audit chain integrity (GATEWAY_AUDIT_KEY)', () => {
  let gw: TestGateway;
  afterEach(() => gw.stop());

  it.each([
    ['keeping the records’ claim to be keyed', undefined],
    ['marking them as plain SHA-256', 'sha256'],
  ])(
    'refuses to start, and audit:verify fails, on a log rewritten without its deny records and resealed without the key (%s), index deleted',
    async (_name, seal) => {
      gw = await new TestGateway().start();
      writeFileSync(join(gw.workspace, 'hello.txt'), 'hi');
      expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200);
      expect((await gw.call('delete_everything', { path: '.' })).status).toBe(403);
      expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200);
      await gw.app.close();

      const withoutDenials = gw.auditRecords().filter((r) => r.decision !== 'deny');
      expect(withoutDenials).toHaveLength(4);
      writeFileSync(gw.auditFile, resealWithoutKey(withoutDenials, seal));
      deleteIndex(gw);

      await expect(gw.restart()).rejects.toThrow(/holds records but the audit index .* is missing or empty\. Run npm run audit:verify -- --rebuild-index/);
      const verified = await auditVerify(gw, [], AUDIT_KEY);
      expect(verified.code).toBe(1);
      expect(verified.stdout).toMatch(/^BROKEN .*audit\.jsonl: line 1: (content does not match its HMAC|sealed without the audit key)/);
      const rebuilt = await auditVerify(gw, ['--rebuild-index'], AUDIT_KEY);
      expect(rebuilt.code).toBe(1);
      expect(rebuilt.stdout).toContain('the audit index was not rebuilt');
      await expect(gw.restart()).rejects.toThrow(/Run npm run audit:verify -- --rebuild-index/);
    },
    60_000,
  );

  it('with the key, --rebuild-index rebuilds a lost index after verifying the whole chain, and the gateway starts again', async () => {
    gw = await new TestGateway().start();
    await gw.call('list_dir', { path: '.' }, { requestId: 'req_kept' });
    await gw.call('list_dir', { path: '.' });
    await gw.app.close();
    deleteIndex(gw);
    const message = await gw.restart().then(
      () => '',
      (err: Error) => err.message,
    );
    expect(message).toMatch(
      /audit\.jsonl holds records but the audit index .*audit-index\.db is missing or empty\. Run npm run audit:verify -- --rebuild-index --checkpoint <seq>:<hash>, with the newest "audit checkpoint" of the application log \(it checks the whole chain first, and that no records were removed from its end\)$/,
    );
    expect(message).not.toContain('\n');

    const noKey = await auditVerify(gw, ['--rebuild-index'], '');
    expect([noKey.code, noKey.stdout]).toEqual([
      1,
      expect.stringContaining('line 1: sealed with an audit key (HMAC-SHA256): set GATEWAY_AUDIT_KEY to verify it'),
    ]);
    const wrongKey = await auditVerify(gw, ['--rebuild-index'], 'x'.repeat(40));
    expect([wrongKey.code, wrongKey.stdout]).toEqual([1, expect.stringContaining('line 1: content does not match its HMAC')]);
    const shortKey = await auditVerify(gw, [], 'short');
    expect([shortKey.code, shortKey.stderr]).toEqual([
      2,
      'audit:verify: (environment) GATEWAY_AUDIT_KEY: must be at least 32 characters (for example: openssl rand -hex 32)\n',
    ]);

    const rebuilt = await auditVerify(gw, ['--rebuild-index'], AUDIT_KEY);
    expect(rebuilt.stdout).toMatch(
      /^OK .*: 4 records, hash chain intact; sealed with GATEWAY_AUDIT_KEY \(HMAC-SHA256\); audit index rebuilt \(head seq 4\); no external head to compare with: /,
    );
    expect(rebuilt.code).toBe(0);
    await gw.restart();
    const found = await gw.asApprover().get('/api/audit?request_id=req_kept');
    expect(found.body.records.map((r: { seq: number }) => r.seq)).toEqual([1, 2]);
    await gw.call('list_dir', { path: '.' });
    await expect(verifyAuditLog(gw.auditFile, { indexFile: join(gw.dataDir, 'audit-index.db'), key })).resolves.toMatchObject({
      ok: true,
      count: 7,
      head: { seq: 7 },
    }); // with the /api/audit request's own record
  }, 60_000);

  it('a log cut short with its index deleted: --rebuild-index fails against the checkpoint in the application log, and says when it has no external head', async () => {
    gw = await new TestGateway({ captureLogs: true }).start();
    for (let i = 0; i < 3; i++) await gw.call('list_dir', { path: '.' });
    await gw.app.close();
    // The writer's last checkpoint line (written at shutdown): the head as the application log keeps it.
    const checkpoints = gw.logLines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'audit checkpoint');
    const last = checkpoints[checkpoints.length - 1];
    const [head] = gw.auditRecords().slice(-1);
    expect(last).toMatchObject({ level: 30, seq: 6, hash: head.hash, checkpoint: `6:${head.hash}`, instance_id: head.instance_id });

    // Someone with the data dir drops the last two records (the chain still holds) and the index.
    const lines = readFileSync(gw.auditFile, 'utf8').split('\n').filter(Boolean);
    writeFileSync(gw.auditFile, `${lines.slice(0, 4).join('\n')}\n`);
    deleteIndex(gw);

    const unchecked = await auditVerify(gw, [], AUDIT_KEY);
    expect([unchecked.code, unchecked.stdout]).toEqual([0, expect.stringContaining('4 records, hash chain intact')]);
    expect(unchecked.stdout).toContain(
      'no external head to compare with: records removed from the end of the log cannot be noticed (pass --checkpoint <seq>:<hash>',
    );

    const verified = await auditVerify(gw, ['--checkpoint', last.checkpoint], AUDIT_KEY);
    expect([verified.code, verified.stdout]).toEqual([
      1,
      expect.stringMatching(/^BROKEN .*audit\.jsonl: line 5: the file ends at seq 4, but the checkpoint recorded seq 6: records were removed from the end\n$/),
    ]);
    const rebuilt = await auditVerify(gw, ['--rebuild-index', '--checkpoint', last.checkpoint], AUDIT_KEY);
    expect([rebuilt.code, rebuilt.stdout]).toEqual([1, expect.stringContaining('records were removed from the end; the audit index was not rebuilt')]);
    await expect(gw.restart()).rejects.toThrow(/is missing or empty/);

    // A checkpoint the shortened log still holds unchanged passes, and says so; a made-up one does not.
    const kept = await auditVerify(gw, ['--rebuild-index', '--checkpoint', `4:${JSON.parse(lines[3]).hash}`], AUDIT_KEY);
    expect([kept.code, kept.stdout]).toEqual([0, expect.stringMatching(/audit index rebuilt \(head seq 4\); matches checkpoint seq 4\n$/)]);
    const forged = await auditVerify(gw, ['--checkpoint', `4:${'0'.repeat(64)}`], AUDIT_KEY);
    expect([forged.code, forged.stdout]).toEqual([1, expect.stringContaining('line 4: record seq 4 differs from the one the checkpoint recorded')]);
    const malformed = await auditVerify(gw, ['--checkpoint', 'latest'], AUDIT_KEY);
    expect([malformed.code, malformed.stderr]).toEqual([2, expect.stringContaining('--checkpoint takes <seq>:<hash>')]);
  }, 60_000);

  it('writes a checkpoint every CHECKPOINT_EVERY_RECORDS records, not only at shutdown', async () => {
    gw = await new TestGateway({ captureLogs: true, agentLimit: { limit: 10_000, ttl_s: 60 } }).start();
    const calls = Math.ceil(CHECKPOINT_EVERY_RECORDS / 2);
    for (let i = 0; i < calls; i += 50) await Promise.all(Array.from({ length: Math.min(50, calls - i) }, () => gw.call('list_dir', { path: '.' })));
    const seqs = gw.logLines
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === 'audit checkpoint')
      .map((l) => l.seq as number);
    expect(seqs.length).toBeGreaterThanOrEqual(1);
    expect(seqs[0]).toBeGreaterThanOrEqual(CHECKPOINT_EVERY_RECORDS);
    const hashes = new Map(gw.auditRecords().map((r) => [r.seq, r.hash]));
    const line = gw.logLines.map((l) => JSON.parse(l)).find((l) => l.msg === 'audit checkpoint');
    expect(line.hash).toBe(hashes.get(line.seq));
  }, 60_000);

  it('rebuilds a lost index over a log whose last write was cut short; the gateway then drops the torn line', async () => {
    gw = await new TestGateway().start();
    await gw.call('list_dir', { path: '.' });
    await gw.app.close();
    deleteIndex(gw);
    const complete = readFileSync(gw.auditFile, 'utf8');
    writeFileSync(gw.auditFile, `${complete}{"ts":"2026-`);
    await expect(verifyAuditLog(gw.auditFile, { key })).resolves.toEqual({ ok: true, count: 2, seal: 'hmac-sha256', tornBytes: 12 });
    expect(rebuildAuditIndex(gw.auditFile, join(gw.dataDir, 'audit-index.db'), key)).toMatchObject({ ok: true, count: 2, head: { seq: 2 }, tornBytes: 12 });
    await gw.restart();
    expect(readFileSync(gw.auditFile, 'utf8')).toBe(complete);
  });

  it('catches up records written after the index head (a crash before indexing) only when they carry the key’s HMAC', async () => {
    gw = await new TestGateway().start();
    await gw.call('list_dir', { path: '.' });
    await gw.app.close();
    const olderIndex = join(gw.root, 'older-index.db');
    copyFileSync(join(gw.dataDir, 'audit-index.db'), olderIndex);
    await gw.restart();
    await gw.call('list_dir', { path: '.' }, { requestId: 'req_after_head' });
    await gw.app.close();
    const written = readFileSync(gw.auditFile, 'utf8');

    // Records 3-4 are in the file but not in the (older) index, and one of them was edited and resealed without the key.
    deleteIndex(gw);
    copyFileSync(olderIndex, join(gw.dataDir, 'audit-index.db'));
    const { hash: _dropped, ...fourth }: Record<string, unknown> = { ...gw.auditRecords()[3], status: 'nothing_to_see', seal: 'sha256' };
    const body = JSON.stringify(fourth);
    writeFileSync(gw.auditFile, `${written.split('\n').slice(0, 3).join('\n')}\n${body.slice(0, -1)},"hash":"${sha256(body)}"}\n`);
    await expect(gw.restart()).rejects.toThrow(/record seq 4: sealed without the audit key .* Run npm run audit:verify$/);

    // The same records as the gateway wrote them: indexed at start, and the chain goes on.
    writeFileSync(gw.auditFile, written);
    deleteIndex(gw);
    copyFileSync(olderIndex, join(gw.dataDir, 'audit-index.db'));
    await gw.restart();
    const found = await gw.asApprover().get('/api/audit?request_id=req_after_head');
    expect(found.body.records.map((r: { seq: number }) => r.seq)).toEqual([3, 4]);
    await gw.call('list_dir', { path: '.' });
    await expect(verifyAuditLog(gw.auditFile, { indexFile: join(gw.dataDir, 'audit-index.db'), key })).resolves.toMatchObject({
      ok: true,
      count: 7,
      head: { seq: 7 },
    });
  });

  it('without a key: warns at start-up that the chain proves order but not authorship, and seals with plain SHA-256', async () => {
    gw = await new TestGateway({ auditKey: null, captureLogs: true }).start();
    const warnings = gw.logLines.map((l) => JSON.parse(l)).filter((l) => l.level === 40 && /GATEWAY_AUDIT_KEY is not set/.test(l.msg));
    expect(warnings).toEqual([expect.objectContaining({ msg: expect.stringContaining('the audit chain proves the order of records but not who wrote them') })]);
    await gw.call('list_dir', { path: '.' });
    expect(gw.auditRecords().map((r) => r.seal)).toEqual(['sha256', 'sha256']);
    await expect(verifyAuditLog(gw.auditFile, { indexFile: join(gw.dataDir, 'audit-index.db') })).resolves.toMatchObject({
      ok: true,
      count: 2,
      seal: 'sha256',
    });
    await expect(verifyAuditLog(gw.auditFile, { key })).resolves.toEqual({
      ok: false,
      line: 1,
      problem: expect.stringMatching(/^sealed without the audit key/),
    });
    const cli = await auditVerify(gw, [], '');
    expect(cli.stdout).toMatch(
      /2 records, hash chain intact; matches the head kept in the database \(seq 2\); sealed without a key \(SHA-256\): proves the order of records, not who wrote them\n$/,
    );

    // A key set later does not vouch for records sealed without it.
    await expect(gw.restart({ auditKey: AUDIT_KEY })).rejects.toThrow(/record seq 2: sealed without the audit key \(plain SHA-256\)/);
  }, 30_000);

  it('a keyed log does not start without its key, nor with another one; with the key there is no warning', async () => {
    gw = await new TestGateway({ captureLogs: true }).start();
    expect(gw.logLines.join('')).not.toContain('GATEWAY_AUDIT_KEY is not set');
    await gw.call('list_dir', { path: '.' });
    expect(gw.auditRecords().map((r) => r.seal)).toEqual(['hmac-sha256', 'hmac-sha256']);
    await expect(gw.restart({ auditKey: null })).rejects.toThrow(/record seq 2: sealed with an audit key \(HMAC-SHA256\): set GATEWAY_AUDIT_KEY to verify it/);
    await expect(gw.restart({ auditKey: 'y'.repeat(32) })).rejects.toThrow(/record seq 2: content does not match its HMAC/);
    await gw.restart({ auditKey: AUDIT_KEY });
    expect((await gw.http().get('/readyz')).status).toBe(200);
  });

  it('still verifies a log written before keyed chains (no seal field), without a key', async () => {
    gw = await new TestGateway({ auditKey: null }).start();
    const legacy = join(gw.root, 'legacy.jsonl');
    const records = [
      { ts: '2026-01-01T00:00:00.000Z', audit_id: 'audit_a', event: 'request', status: 'ok' },
      { ts: '2026-01-01T00:00:01.000Z', audit_id: 'audit_b', event: 'request', status: 'ok' },
    ];
    writeFileSync(legacy, resealWithoutKey(records));
    await expect(verifyAuditLog(legacy)).resolves.toEqual({ ok: true, count: 2, seal: 'sha256' });
    await expect(verifyAuditLog(legacy, { key })).resolves.toMatchObject({ ok: false, line: 1 });
  });

  it('keeps at most 16 KiB of a call’s arguments per record, with the size and SHA-256 of the full arguments', async () => {
    gw = await new TestGateway({ maxBodyBytes: 2_000_000 }).start();
    const args = { path: 'hello.txt', webhook_url: 'https://example.com/hook', note: `mail alice@example.com ${'x'.repeat(1_000_000)}` };
    const denied = await gw.call('configure', args);
    expect([denied.status, denied.body.reason_code]).toEqual([403, 'forbidden_field']);

    const lines = readFileSync(gw.auditFile, 'utf8').trimEnd().split('\n');
    const line = lines.find((l) => JSON.parse(l).audit_id === denied.body.audit_id)!;
    expect(Buffer.byteLength(line)).toBeLessThan(AUDIT_ARGUMENTS_MAX_BYTES + 1024);
    const record = JSON.parse(line);
    const fullJson = JSON.stringify(args);
    expect(record).toMatchObject({
      event: 'decision',
      decision: 'deny',
      arguments_truncated: true,
      arguments_bytes: Buffer.byteLength(fullJson),
      arguments_sha256: sha256(fullJson),
    });
    expect(Buffer.byteLength(JSON.stringify(record.arguments))).toBeLessThanOrEqual(AUDIT_ARGUMENTS_MAX_BYTES);
    expect(record.arguments).toMatch(/^\{"path":"hello.txt","webhook_url":"\[REDACTED[^"]*\]","note":"mail \[REDACTED:email:[0-9a-f]+\] xxxx/);
    expect(line).not.toContain('alice@example.com');

    const small = await gw.call('configure', { path: 'hello.txt', note: 'y'.repeat(10_000) });
    const smallRecord = gw.auditRecords().find((r) => r.audit_id === small.body.audit_id)!;
    expect(smallRecord.arguments).toEqual({ path: 'hello.txt', note: 'y'.repeat(10_000) });
    expect(smallRecord).not.toHaveProperty('arguments_truncated');
    await expect(verifyAuditLog(gw.auditFile, { indexFile: join(gw.dataDir, 'audit-index.db'), key })).resolves.toMatchObject({ ok: true });
  });
});
