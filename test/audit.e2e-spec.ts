import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { rebuildAuditIndex, verifyAuditLog } from '../src/audit/audit-verify';
import { AUDIT_KEY, ED_AGENT, HMAC_SECRET, TestGateway } from './support/test-gateway';

const run = promisify(execFile);
const key = Buffer.from(AUDIT_KEY);

describe('Audit trail', () => {
  let gw: TestGateway;
  afterEach(() => gw.stop());

  const recordsOf = (auditId: string) => gw.auditRecords().filter((r) => r.audit_id === auditId);

  describe('every status leaves its records, with the audit_id of the response', () => {
    beforeEach(async () => {
      gw = await new TestGateway({ maxPending: 1 }).start();
      writeFileSync(join(gw.workspace, 'hello.txt'), 'hi');
    });

    it('200: decision allow (with arguments) before, outcome executed after', async () => {
      const res = await gw.call('read_file', { path: 'hello.txt' }, { requestId: 'req_audit_200' });
      expect(res.status).toBe(200);
      const [decision, outcome] = recordsOf(res.body.audit_id);
      expect(decision).toMatchObject({
        event: 'decision',
        decision: 'allow',
        request_id: 'req_audit_200',
        agent_id: 'agent_deploy_test',
        agent_version: '1.0.0',
        role: 'deployer',
        tool: 'read_file',
        arguments: { path: 'hello.txt' },
        client_ip: expect.any(String),
      });
      expect(outcome).toMatchObject({ event: 'outcome', status: 'executed', http_status: 200, duration_ms: expect.any(Number) });
      expect(outcome.seq).toBe((decision.seq as number) + 1);
      // The instance's name (GATEWAY_INSTANCE_ID unset: the host name and a suffix kept in the data dir) is in every record.
      const suffix = readFileSync(join(gw.dataDir, 'instance-suffix'), 'utf8').trim();
      expect(gw.auditRecords().every((r) => typeof r.instance_id === 'string' && r.instance_id.endsWith(`-${suffix}`))).toBe(true);
    });

    it('202 and 429: decision pending, outcome pending_approval, then too_many_pending', async () => {
      const first = await gw.call('write_file', { path: 'a.txt', content: 'x' });
      expect(first.status).toBe(202);
      expect(recordsOf(first.body.audit_id)).toEqual([
        expect.objectContaining({ event: 'decision', decision: 'pending' }),
        expect.objectContaining({ event: 'outcome', status: 'pending_approval', http_status: 202, approval_id: first.body.approval_id }),
      ]);
      const second = await gw.call('write_file', { path: 'b.txt', content: 'x' });
      expect(second.status).toBe(429);
      expect(recordsOf(second.body.audit_id)).toEqual([
        expect.objectContaining({ event: 'decision', decision: 'pending' }),
        expect.objectContaining({ event: 'outcome', status: 'rate_limited', reason_code: 'too_many_pending', http_status: 429 }),
      ]);
    });

    it('502: decision allow, outcome tool_error', async () => {
      const res = await gw.call('read_file', { path: 'missing.txt' });
      expect(res.status).toBe(502);
      expect(recordsOf(res.body.audit_id)).toEqual([
        expect.objectContaining({ event: 'decision', decision: 'allow' }),
        expect.objectContaining({ event: 'outcome', status: 'tool_error', reason_code: 'tool_error', http_status: 502 }),
      ]);
    });

    it.each([
      ['403 tool_not_registered', 'nope', { path: 'a' }, 403, 'tool_not_registered'],
      ['403 forbidden_field', 'read_file', { path: 'a', api_key: 'AKIAIOSFODNN7EXAMPLE' }, 403, 'forbidden_field'],
      ['400 invalid_arguments', 'read_file', { path: 7 }, 400, 'invalid_arguments'],
      ['403 path_outside_workspace', 'read_file', { path: '../x' }, 403, 'path_outside_workspace'],
    ])('%s: one decision deny record', async (_name, tool, args, http, reason) => {
      const res = await gw.call(tool, args);
      expect(res.status).toBe(http);
      const records = recordsOf(res.body.audit_id);
      expect(records).toEqual([expect.objectContaining({ event: 'decision', decision: 'deny', reason_code: reason, http_status: http, tool })]);
      expect(JSON.stringify(records)).not.toContain('AKIAIOSFODNN7EXAMPLE');
    });

    it.each([
      ['401', () => gw.http().post('/api/tools/call').set('Content-Type', 'application/json').send('{}'), 401, 'missing_signature'],
      ['400 malformed JSON', () => gw.post('/api/tools/call', '{"agent_id":'), 400, 'malformed_json'],
      ['415', () => gw.http().post('/api/tools/call').set('Content-Type', 'text/plain').send('x'), 415, 'unsupported_media_type'],
      ['413', () => gw.call('write_now', { path: 'x', content: 'x'.repeat(70_000) }), 413, 'body_too_large'],
      ['400 invalid_envelope', () => gw.post('/api/tools/call', { agent_id: 'agent_deploy_test' }), 400, 'invalid_envelope'],
    ])('%s: one request record', async (_name, send, http, reason) => {
      const res = await send();
      expect(res.status).toBe(http);
      expect(recordsOf(res.body.audit_id)).toEqual([
        expect.objectContaining({ event: 'request', status: res.body.status, reason_code: reason, http_status: http, path: '/api/tools/call' }),
      ]);
    });

    it('approvals: the approver decision before execution, the outcome after; listings and refusals too', async () => {
      const asked = await gw.call('write_file', { path: 'ok.txt', content: 'y' });
      const approved = await gw.asApprover().decide(asked.body.approval_id, true);
      expect(approved.status).toBe(200);
      expect(recordsOf(approved.body.audit_id)).toEqual([
        expect.objectContaining({
          event: 'approval',
          decision: 'allow',
          approver_id: 'admin',
          approval_id: asked.body.approval_id,
          agent_id: 'agent_deploy_test',
          tool: 'write_file',
          arguments: { path: 'ok.txt', content: 'y' },
        }),
        expect.objectContaining({ event: 'outcome', status: 'executed', http_status: 200, approver_id: 'admin' }),
      ]);
      const list = await gw.asApprover().get('/api/approvals');
      expect(list.status).toBe(200);
      expect(gw.auditRecords().at(-1)).toMatchObject({ event: 'request', path: '/api/approvals', http_status: 200, approver_id: 'admin' });
      const refused = await gw.http().post('/approve').send({ approval_id: 'x', approved: true });
      expect(recordsOf(refused.body.audit_id)).toEqual([expect.objectContaining({ event: 'request', reason_code: 'missing_token', http_status: 401 })]);
    });

    it('answers GET /api/audit from the index, for approvers only', async () => {
      const res = await gw.call('read_file', { path: 'hello.txt' }, { requestId: 'req_find_me' });
      const byRequest = await gw.asApprover().get('/api/audit?request_id=req_find_me');
      expect(byRequest.status).toBe(200);
      expect(byRequest.body.records.map((r: { event: string }) => r.event)).toEqual(['decision', 'outcome']);
      const byAuditId = await gw.asApprover().get(`/api/audit?audit_id=${res.body.audit_id}&limit=1`);
      expect(byAuditId.body.records).toEqual([expect.objectContaining({ event: 'outcome', audit_id: res.body.audit_id })]);
      const byAgent = await gw.asApprover().get('/api/audit?agent_id=agent_deploy_test&limit=500');
      expect(byAgent.body.records.length).toBeGreaterThanOrEqual(2);
      expect(byAgent.body.records.every((r: { agent_id: string }) => r.agent_id === 'agent_deploy_test')).toBe(true);
      expect((await gw.get('/api/audit?request_id=req_find_me')).status).toBe(401);
      expect((await gw.asApprover().get('/api/audit?limit=0')).status).toBe(400);
    });
  });

  it('keeps one valid chain under 200 parallel calls (with audit_fsync group commit), and the CLI agrees', async () => {
    gw = await new TestGateway({ auditFsync: true }).start();
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hi');
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? gw.call('read_file', { path: 'hello.txt' }) : gw.call('list_dir', { path: '.' }, { agent: ED_AGENT }))),
    );
    expect(answers.every((r) => r.status === 200)).toBe(true);
    await expect(verifyAuditLog(gw.auditFile, { indexFile: join(gw.dataDir, 'audit-index.db'), key })).resolves.toMatchObject({
      ok: true,
      count: 400,
      head: { seq: 400 },
    });
    const records = gw.auditRecords();
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    for (const answer of answers) {
      expect(records.filter((r) => r.audit_id === answer.body.audit_id).map((r) => r.event)).toEqual(['decision', 'outcome']);
    }
    const env = { ...process.env, GATEWAY_DATA_DIR: gw.dataDir, GATEWAY_AUDIT_LOG: gw.auditFile, GATEWAY_AUDIT_KEY: AUDIT_KEY };
    const ok = await run('npx', ['tsx', 'src/cli/audit-verify.ts'], { env });
    expect(ok.stdout).toMatch(
      /^OK .*: 400 records, hash chain intact; matches the head kept in the database \(seq 400\); sealed with GATEWAY_AUDIT_KEY \(HMAC-SHA256\)\n$/,
    );
    const lines = readFileSync(gw.auditFile, 'utf8').split('\n');
    writeFileSync(gw.auditFile, lines.slice(0, 397).join('\n') + '\n');
    await expect(run('npx', ['tsx', 'src/cli/audit-verify.ts'], { env })).rejects.toMatchObject({
      code: 1,
      stdout: expect.stringContaining('line 398: the file ends at seq 397, but the audit index recorded seq 400'),
    });
  }, 30_000);

  it('resumes the chain after a restart, starts on a lost index only once it is rebuilt, and refuses to start on a truncated log', async () => {
    gw = await new TestGateway().start();
    await gw.call('list_dir', { path: '.' }, { requestId: 'req_before_restart' });
    await gw.restart();
    await gw.call('list_dir', { path: '.' });
    expect(gw.auditRecords().map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    const indexFile = join(gw.dataDir, 'audit-index.db');
    await expect(verifyAuditLog(gw.auditFile, { indexFile, key })).resolves.toMatchObject({ ok: true, count: 4 });

    await gw.app.close();
    for (const f of ['audit-index.db', 'audit-index.db-wal', 'audit-index.db-shm']) rmSync(join(gw.dataDir, f), { force: true });
    await expect(gw.restart()).rejects.toThrow(
      /holds records but the audit index .*audit-index\.db is missing or empty\. Run npm run audit:verify -- --rebuild-index/,
    );
    expect(rebuildAuditIndex(gw.auditFile, indexFile, key)).toMatchObject({ ok: true, count: 4, head: { seq: 4 } });
    await gw.restart();
    const found = await gw.asApprover().get('/api/audit?request_id=req_before_restart');
    expect(found.body.records.map((r: { seq: number }) => r.seq)).toEqual([1, 2]);

    await gw.app.close();
    const lines = readFileSync(gw.auditFile, 'utf8').split('\n');
    writeFileSync(gw.auditFile, lines.slice(0, 2).join('\n') + '\n');
    await expect(gw.restart()).rejects.toThrow(/ends before record seq \d+ that the audit index holds: records were removed/);
  });

  it('fails closed: an audit log that cannot be written gives 503 audit_unavailable, runs nothing, and /readyz turns 503', async () => {
    // /dev/full accepts the open and fails every write with ENOSPC: a full disk, for real.
    gw = await new TestGateway({ auditLog: '/dev/full' }).start();
    expect((await gw.http().get('/readyz')).status).toBe(200);
    const res = await gw.call('write_now', { path: 'must-not-exist.txt', content: 'x' });
    expect([res.status, res.body.status, res.body.reason_code]).toEqual([503, 'audit_unavailable', 'audit_unavailable']);
    expect(existsSync(join(gw.workspace, 'must-not-exist.txt'))).toBe(false);
    const refused = await gw.http().post('/api/tools/call').set('Content-Type', 'application/json').send('{}');
    expect(refused.status).toBe(503);
    const ready = await gw.http().get('/readyz');
    expect([ready.status, ready.body.reason_code]).toEqual([503, 'audit_unavailable']);
  });

  it('keeps secrets and PII out of the audit file and the application log', async () => {
    gw = await new TestGateway({ captureLogs: true }).start();
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hi');
    const pii = ['alice@example.com', '4111 1111 1111 1111', '123-45-6789', HMAC_SECRET];
    await gw.call('configure', { path: 'hello.txt', note: `mail alice@example.com card 4111 1111 1111 1111 ssn 123-45-6789 key ${HMAC_SECRET}` });
    await gw.call('configure', { path: 'hello.txt', nested: { password: 'hunter2-is-my-password' } });
    await gw.call('write_file', { path: 'alice@example.com.txt', content: 'x' });
    await gw.http().post('/approve').set('Authorization', 'Bearer not-the-token-alice@example.com').send({ approval_id: 'x', approved: true });
    await gw.asApprover().get('/api/approvals');
    await gw.http().get('/api/approvals?status=alice@example.com'); // PII in a URL: 401, and its log line
    await gw.http().post('/api/tools/call').set('Content-Type', 'application/json').send('{not json'); // refused by the body parser
    const audit = readFileSync(gw.auditFile, 'utf8');
    const log = gw.logLines.join('');
    expect(log).toContain('request completed');
    for (const value of [...pii, 'hunter2-is-my-password', 'not-the-token']) {
      expect(audit).not.toContain(value);
      expect(log).not.toContain(value);
    }
    expect(audit).toMatch(/\[REDACTED:email:[0-9a-f]{8}\]/);
    expect(audit).toMatch(/\[REDACTED:card:[0-9a-f]{8}\]/);
    expect(audit).toMatch(/\[REDACTED:secret:[0-9a-f]{8}\]/);
    // One line per request, with the verified agent, the tool, the status and the duration.
    const completed = gw.logLines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request completed');
    expect(completed[0]).toMatchObject({
      agent_id: 'agent_deploy_test',
      tool: 'configure',
      res: { status: 200 },
      responseTime: expect.any(Number),
      reqId: expect.stringMatching(/^audit_/),
    });
    expect(completed).toHaveLength(7);
    expect(completed[5]).toMatchObject({
      req: { method: 'GET', url: expect.stringMatching(/^\/api\/approvals\?status=\[REDACTED:email:[0-9a-f]{8}\]$/) },
      res: { status: 401 },
    });
    expect(completed[6]).toMatchObject({
      req: { method: 'POST', url: '/api/tools/call' },
      res: { status: 400 },
      reqId: expect.stringMatching(/^audit_[0-9a-f]{32}$/),
    });
  });
});

describe('Audit tamper evidence (audit:verify)', () => {
  let gw: TestGateway;
  let lines: string[];
  let copy: string;
  beforeAll(async () => {
    gw = await new TestGateway().start();
    for (let i = 0; i < 5; i++) await gw.call('list_dir', { path: '.' });
    lines = readFileSync(gw.auditFile, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(10);
    copy = join(gw.root, 'tampered.jsonl');
  });
  afterAll(() => gw.stop());

  const verifyWith = async (tampered: string[], withIndex = false) => {
    writeFileSync(copy, tampered.join('\n') + '\n');
    return verifyAuditLog(copy, { indexFile: withIndex ? join(gw.dataDir, 'audit-index.db') : undefined, key });
  };

  it('passes the untouched file', async () => {
    await expect(verifyWith(lines, true)).resolves.toEqual({ ok: true, count: 10, seal: 'hmac-sha256', head: { seq: 10, hash: JSON.parse(lines[9]).hash } });
  });

  it('catches an edited line', async () => {
    const edited = [...lines];
    edited[3] = edited[3].replace('"agent_deploy_test"', '"agent_someone_else"');
    await expect(verifyWith(edited)).resolves.toEqual({ ok: false, line: 4, problem: expect.stringContaining('edited') });
  });

  it('catches a removed line', async () => {
    await expect(verifyWith([...lines.slice(0, 4), ...lines.slice(5)])).resolves.toMatchObject({ ok: false, line: 5 });
  });

  it('catches an inserted line (even a validly sealed copy)', async () => {
    await expect(verifyWith([...lines.slice(0, 6), lines[2], ...lines.slice(6)])).resolves.toMatchObject({ ok: false, line: 7 });
  });

  it('catches reordered lines', async () => {
    const swapped = [...lines];
    [swapped[7], swapped[8]] = [swapped[8], swapped[7]];
    await expect(verifyWith(swapped)).resolves.toMatchObject({ ok: false, line: 8 });
  });

  it('catches the newest records removed, against the head in the database', async () => {
    await expect(verifyWith(lines.slice(0, 8))).resolves.toMatchObject({ ok: true, count: 8 });
    await expect(verifyWith(lines.slice(0, 8), true)).resolves.toEqual({ ok: false, line: 9, problem: expect.stringContaining('removed from the end') });
  });
});
