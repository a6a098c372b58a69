import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ED_AGENT, TestGateway, WRITER_TOKEN } from './support/test-gateway';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Human approval flow', () => {
  let gw: TestGateway;

  beforeEach(async () => {
    gw = await new TestGateway().start();
  });
  afterEach(() => gw.stop());

  async function pending(tool: string, args: Record<string, unknown>, requestId?: string): Promise<string> {
    const res = await gw.call(tool, args, { requestId });
    expect(res.status).toBe(202);
    return res.body.approval_id;
  }

  it('walks the README story: delete asked → 202 → listed → approved → file gone → agent reads the result', async () => {
    writeFileSync(join(gw.workspace, 'old.log'), 'stale');
    const id = await pending('delete_file', { path: '/workspace/old.log' }, 'req_delete_1');
    expect(existsSync(join(gw.workspace, 'old.log'))).toBe(true);

    const listed = await gw.asApprover().get('/api/approvals?status=pending');
    expect(listed.status).toBe(200);
    expect(listed.body.approvals).toEqual([
      expect.objectContaining({
        approval_id: id,
        status: 'pending',
        agent_id: 'agent_deploy_test',
        agent_version: '1.0.0',
        role: 'deployer',
        tool: 'delete_file',
        arguments: { path: '/workspace/old.log' },
        request_id: 'req_delete_1',
        decided_by: null,
      }),
    ]);

    const decided = await gw.asApprover().decide(id, true, 'ok to clean up');
    expect(decided.status).toBe(200);
    expect(decided.body).toEqual({
      success: true,
      status: 'executed',
      approval_id: id,
      result: { path: '/workspace/old.log', deleted: true },
      audit_id: expect.stringMatching(/^audit_/),
    });
    expect(existsSync(join(gw.workspace, 'old.log'))).toBe(false);

    const collected = await gw.get(`/api/approvals/${id}`);
    expect(collected.status).toBe(200);
    expect(collected.body).toMatchObject({
      approval_id: id,
      status: 'executed',
      decided_by: 'admin',
      comment: 'ok to clean up',
      result: { path: '/workspace/old.log', deleted: true },
    });
    expect(Date.parse(collected.body.decided_at)).not.toBeNaN();
  });

  it('rejects: nothing runs, and the agent sees the rejection', async () => {
    const id = await pending('write_file', { path: 'never.txt', content: 'x' });
    const res = await gw.asApprover().decide(id, false, 'not today');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: false, status: 'rejected', approval_id: id, audit_id: expect.stringMatching(/^audit_/) });
    expect(existsSync(join(gw.workspace, 'never.txt'))).toBe(false);
    expect((await gw.get(`/api/approvals/${id}`)).body).toMatchObject({ status: 'rejected', comment: 'not today', decided_by: 'admin' });
    expect((await gw.asApprover().get('/api/approvals?status=rejected')).body.approvals.map((a: { approval_id: string }) => a.approval_id)).toEqual([id]);
  });

  describe('approver authentication', () => {
    it('refuses /approve and the listing without a token (401 missing_token)', async () => {
      const id = await pending('write_file', { path: 'a.txt', content: 'x' });
      const approve = await gw.http().post('/approve').send({ approval_id: id, approved: true });
      expect([approve.status, approve.body.reason_code]).toEqual([401, 'missing_token']);
      const list = await gw.http().get('/api/approvals');
      expect([list.status, list.body.reason_code]).toEqual([401, 'missing_token']);
      expect(existsSync(join(gw.workspace, 'a.txt'))).toBe(false);
    });

    it('refuses a wrong token (401 invalid_token)', async () => {
      const id = await pending('write_file', { path: 'a.txt', content: 'x' });
      const res = await gw.asApprover('not-a-real-token').decide(id, true);
      expect([res.status, res.body.reason_code]).toEqual([401, 'invalid_token']);
    });

    it("never accepts an agent's signature as an approval", async () => {
      const id = await pending('write_file', { path: 'a.txt', content: 'x' });
      const res = await gw.post('/approve', { approval_id: id, approved: true });
      expect([res.status, res.body.reason_code]).toEqual([401, 'missing_token']);
      expect(existsSync(join(gw.workspace, 'a.txt'))).toBe(false);
    });

    it('403 for an approver not allowed to decide on that tool; the approval stays pending', async () => {
      writeFileSync(join(gw.workspace, 'keep.txt'), 'x');
      const id = await pending('delete_file', { path: 'keep.txt' });
      const res = await gw.asApprover(WRITER_TOKEN).decide(id, true);
      expect([res.status, res.body.status, res.body.reason_code]).toEqual([403, 'denied', 'approver_not_allowed_for_tool']);
      expect(existsSync(join(gw.workspace, 'keep.txt'))).toBe(true);
      expect((await gw.asApprover().get(`/api/approvals/${id}`)).body.status).toBe('pending');
      // …while the same approver may decide on write_file.
      const writeId = await pending('write_file', { path: 'ok.txt', content: 'y' });
      expect((await gw.asApprover(WRITER_TOKEN).decide(writeId, true)).status).toBe(200);
    });
  });

  it('404 for an unknown approval id', async () => {
    const res = await gw.asApprover().decide('approv_00000000000000000000000000000000', true);
    expect([res.status, res.body.status, res.body.reason_code]).toEqual([404, 'not_found', 'not_found']);
    expect((await gw.asApprover().get('/api/approvals/approv_nope')).status).toBe(404);
  });

  it('409 already_decided on a second decision', async () => {
    const id = await pending('write_file', { path: 'once.txt', content: 'first' });
    expect((await gw.asApprover().decide(id, true)).status).toBe(200);
    const again = await gw.asApprover().decide(id, false);
    expect([again.status, again.body.status, again.body.reason_code]).toEqual([409, 'conflict', 'already_decided']);
  });

  it('400 for a malformed decision body or status filter', async () => {
    const res = await gw.asApprover().decide('approv_x', 'yes' as unknown as boolean);
    expect([res.status, res.body.status]).toEqual([400, 'invalid_request']);
    const list = await gw.asApprover().get('/api/approvals?status=bogus');
    expect([list.status, list.body.reason_code]).toEqual([400, 'invalid_query']);
  });

  it('executes exactly once under 20 concurrent approvals', async () => {
    writeFileSync(join(gw.workspace, 'race.txt'), 'x');
    const deleteId = await pending('delete_file', { path: 'race.txt' });
    const writeId = await pending('write_file', { path: 'race-out.txt', content: 'written once' });
    for (const id of [deleteId, writeId]) {
      const answers = await Promise.all(Array.from({ length: 20 }, () => gw.asApprover().decide(id, true)));
      const statuses = answers.map((r) => r.status).sort();
      // A second execution of the delete would have answered 502 (file already gone).
      expect(statuses).toEqual([200, ...Array(19).fill(409)]);
      expect(answers.filter((r) => r.status === 409).every((r) => r.body.reason_code === 'already_decided')).toBe(true);
    }
    expect(existsSync(join(gw.workspace, 'race.txt'))).toBe(false);
    expect(readFileSync(join(gw.workspace, 'race-out.txt'), 'utf8')).toBe('written once');
    expect(readdirSync(gw.workspace).sort()).toEqual(['race-out.txt']);
  });

  it('shows approval ids as they are, even one holding a Luhn-valid digit run, and redacts what the agent sent', async () => {
    const id = await pending('write_file', { path: 'ids.txt', content: 'mail alice@example.com' });
    // Found by the crash test: a random hex id can contain 16 digits that pass Luhn.
    const cardLike = 'approv_4111111111111111aaaaaaaaaaaaaaaa';
    const db = new Database(join(gw.dataDir, 'gateway.db'));
    db.prepare('UPDATE approvals SET id = ? WHERE id = ?').run(cardLike, id);
    db.close();
    const [listed] = (await gw.asApprover().get('/api/approvals?status=pending')).body.approvals;
    expect(listed.approval_id).toBe(cardLike);
    expect(listed.arguments.content).toMatch(/^mail \[REDACTED:email:[0-9a-f]{8}\]$/);
    expect((await gw.asApprover().decide(cardLike, true)).status).toBe(200);
  });

  it('lets only the agent that asked collect the approval', async () => {
    const id = await pending('write_file', { path: 'mine.txt', content: 'x' });
    expect((await gw.get(`/api/approvals/${id}`)).status).toBe(200);
    const other = await gw.get(`/api/approvals/${id}`, ED_AGENT);
    expect([other.status, other.body.reason_code]).toEqual([404, 'not_found']);
  });

  it('re-checks the workspace rules at approval time (a symlink planted after asking is refused)', async () => {
    mkdirSync(join(gw.workspace, 'sub'));
    const id = await pending('write_file', { path: 'sub/x.txt', content: 'x' });
    rmSync(join(gw.workspace, 'sub'), { recursive: true });
    symlinkSync(gw.root, join(gw.workspace, 'sub'));
    const res = await gw.asApprover().decide(id, true);
    expect([res.status, res.body.reason_code]).toEqual([403, 'path_outside_workspace']);
    expect(existsSync(join(gw.root, 'x.txt'))).toBe(false);
    const seen = (await gw.get(`/api/approvals/${id}`)).body;
    expect(seen.status).toBe('failed');
    expect(seen.error).toMatchObject({ http_status: 403, reason_code: 'path_outside_workspace' });
  });

  it('stores a tool error as failed, for the agent to see', async () => {
    writeFileSync(join(gw.workspace, 'gone.txt'), 'x');
    const id = await pending('delete_file', { path: 'gone.txt' });
    rmSync(join(gw.workspace, 'gone.txt'));
    const res = await gw.asApprover().decide(id, true);
    expect([res.status, res.body.status]).toEqual([502, 'tool_error']);
    expect((await gw.get(`/api/approvals/${id}`)).body).toMatchObject({ status: 'failed', error: { status: 'tool_error', http_status: 502 } });
  });

  it('keeps a pending approval, and its expiry, across a restart', async () => {
    const id = await pending('write_file', { path: 'after-restart.txt', content: 'survived' });
    const before = (await gw.asApprover().get(`/api/approvals/${id}`)).body;
    await gw.restart();
    const after = (await gw.asApprover().get('/api/approvals?status=pending')).body.approvals;
    // The same record; the listing shows it redacted, the approver's detail view exactly.
    expect(after).toEqual([{ ...before, arguments_shown: 'redacted', arguments_json: undefined }]);
    expect((await gw.asApprover().decide(id, true)).status).toBe(200);
    expect(readFileSync(join(gw.workspace, 'after-restart.txt'), 'utf8')).toBe('survived');
  });

  it('marks a call approved but never completed (a crash mid-execution) as failed at restart, never re-running it', async () => {
    const id = await pending('write_file', { path: 'crash.txt', content: 'x' });
    await gw.app.close();
    // What a kill -9 between "approved" and "executed" leaves in the database file.
    const db = new Database(join(gw.dataDir, 'gateway.db'));
    db.prepare("UPDATE approvals SET status = 'approved', decided_by = 'admin', decided_at = ? WHERE id = ?").run(Date.now(), id);
    db.close();
    await gw.restart();
    const seen = (await gw.asApprover().get(`/api/approvals/${id}`)).body;
    expect(seen).toMatchObject({ status: 'failed', error: { reason_code: 'interrupted' } });
    expect((await gw.asApprover().decide(id, true)).status).toBe(409);
    expect(existsSync(join(gw.workspace, 'crash.txt'))).toBe(false);
  });
});

describe('An approved call whose outcome the database refuses to store', () => {
  it('answers 503 outcome_unrecorded (it ran), leaves it approved rather than failed, and never runs it again', async () => {
    const gw = await new TestGateway({ captureLogs: true }).start();
    try {
      const asked = await gw.call('write_file', { path: 'ran.txt', content: 'it ran' });
      expect(asked.status).toBe(202);
      // From now on the database refuses to store an outcome of "executed", as a failing disk would.
      const db = new Database(join(gw.dataDir, 'gateway.db'));
      db.exec(
        "CREATE TRIGGER refuse_outcome BEFORE UPDATE OF status ON approvals WHEN NEW.status = 'executed' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
      );
      db.close();

      const res = await gw.asApprover().decide(asked.body.approval_id, true);
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ success: false, reason_code: 'outcome_unrecorded' });
      expect(res.body.error).toMatch(/^The call ran, but its outcome could not be stored/);
      expect(readFileSync(join(gw.workspace, 'ran.txt'), 'utf8')).toBe('it ran');
      // Not "failed" (which reads as: ask again); approved, for the lease rule to settle.
      const seen = (await gw.asApprover().get(`/api/approvals/${asked.body.approval_id}`)).body;
      expect(seen).toMatchObject({ status: 'approved' });
      expect(seen).not.toHaveProperty('error');
      expect((await gw.asApprover().decide(asked.body.approval_id, true)).status).toBe(409);
      const logged = gw.logLines.join('\n');
      expect(logged).toContain(`${asked.body.approval_id} (tool write_file) ran, but its outcome could not be stored (SQLITE_CONSTRAINT_TRIGGER)`);
      expect(logged).not.toContain(gw.root);
    } finally {
      await gw.stop();
    }
  });
});

describe('Approval limits', () => {
  it('expires a pending approval after approval_ttl_s: 410 expired, listed as expired, nothing runs', async () => {
    const gw = await new TestGateway({ approvalTtlS: 1 }).start();
    try {
      const res = await gw.call('write_file', { path: 'late.txt', content: 'x' });
      expect(res.status).toBe(202);
      await sleep(1100);
      const late = await gw.asApprover().decide(res.body.approval_id, true);
      expect([late.status, late.body.status, late.body.reason_code]).toEqual([410, 'expired', 'expired']);
      const expired = (await gw.asApprover().get('/api/approvals?status=expired')).body.approvals;
      expect(expired.map((a: { approval_id: string }) => a.approval_id)).toEqual([res.body.approval_id]);
      expect(existsSync(join(gw.workspace, 'late.txt'))).toBe(false);
    } finally {
      await gw.stop();
    }
  });

  it('refuses more than max_pending_approvals_per_agent pending approvals (429 too_many_pending)', async () => {
    const gw = await new TestGateway({ maxPending: 2 }).start();
    try {
      for (let i = 0; i < 2; i++) expect((await gw.call('write_file', { path: `p${i}.txt`, content: 'x' })).status).toBe(202);
      const third = await gw.call('write_file', { path: 'p2.txt', content: 'x' });
      expect([third.status, third.body.status, third.body.reason_code]).toEqual([429, 'rate_limited', 'too_many_pending']);
      expect((await gw.asApprover().get('/api/approvals?status=pending')).body.approvals).toHaveLength(2);
      // Another agent's queue is its own: a read still runs.
      expect((await gw.call('list_dir', { path: '/workspace' }, { agent: ED_AGENT })).status).toBe(200);
    } finally {
      await gw.stop();
    }
  });
});
