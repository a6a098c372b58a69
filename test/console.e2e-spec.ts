import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type Browser, type Locator, type Page } from 'playwright-core';
import { browserAvailable, launchChromium } from './support/chromium';
import { ADMIN_TOKEN, TestGateway, WRITER_TOKEN } from './support/test-gateway';

const XSS = '<img src=x onerror="window.__xss = 1; alert(1)">';

describe('GET /console: the approver console page', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await new TestGateway().start();
  });
  afterAll(() => gw.stop());

  it('is served without a token, with a strict CSP, no framing and no inline script', async () => {
    const page = await gw.http().get('/console');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = page.headers['content-security-policy'];
    expect(csp.split(';')).toEqual(
      expect.arrayContaining([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'none'",
      ]),
    );
    expect(csp).not.toContain('unsafe');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    // Every script is a file of this gateway; no inline handler or style.
    const html = page.text;
    expect([...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0])).toEqual([
      '<script src="/console/visible-text.js" defer>',
      '<script src="/console/app.js" defer>',
    ]);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).not.toMatch(/\sstyle=/i);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('serves its script and stylesheet under the same headers', async () => {
    const script = await gw.http().get('/console/app.js');
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.headers['x-frame-options']).toBe('DENY');
    expect(script.text).not.toContain('innerHTML');
    // The approval views' rule for hidden characters, generated from the gateway's own module.
    const visible = await gw.http().get('/console/visible-text.js');
    expect(visible.status).toBe(200);
    expect(visible.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(visible.text).toContain('window.showHidden');
    const styles = await gw.http().get('/console/app.css');
    expect(styles.status).toBe(200);
    expect(styles.headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('holds no data itself: the API it calls still needs the approver token', async () => {
    expect((await gw.http().get('/api/approvals?status=pending')).status).toBe(401);
    expect((await gw.http().get('/api/approver')).status).toBe(401);
    expect((await gw.http().get('/console/other.js')).status).toBe(404);
  });

  it('GET /api/approver says who a token signs in as, and what it may do', async () => {
    expect((await gw.asApprover(ADMIN_TOKEN).get('/api/approver')).body).toEqual({ approver_id: 'admin', tools: null, audit: true });
    expect((await gw.asApprover(WRITER_TOKEN).get('/api/approver')).body).toEqual({ approver_id: 'writer', tools: ['write_file'], audit: false });
    const wrong = await gw.asApprover('not-the-token').get('/api/approver');
    expect(wrong.status).toBe(401);
    expect(wrong.body.reason_code).toBe('invalid_token');
  });
});

(browserAvailable('the browser half of the console tests') ? describe : describe.skip)('the approver console in a real browser (Debian chromium)', () => {
  let gw: TestGateway;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    gw = await new TestGateway().start();
    await gw.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}`;
    browser = await launchChromium();
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
  });

  /** A fresh tab that records every dialog, script error and CSP violation. */
  async function openConsole(path = '/console'): Promise<{ page: Page; dialogs: string[]; errors: string[] }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const dialogs: string[] = [];
    const errors: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) errors.push(message.text());
    });
    await page.goto(base + path);
    return { page, dialogs, errors };
  }

  async function signIn(page: Page, token: string): Promise<void> {
    await page.getByLabel('Approver token').fill(token);
    await page.keyboard.press('Enter');
  }

  it('signs in, sees a pending write, opens its diff, approves it, and the file is on disk; the XSS argument is only text', async () => {
    const content = `hello from the agent\n${XSS}\n`;
    const asked = await gw.call('write_file', { path: 'notes/hello.txt', content, create_dirs: true });
    expect(asked.status).toBe(202);

    const { page, dialogs, errors } = await openConsole();
    await signIn(page, ADMIN_TOKEN);

    const row = page.locator('#pending-table tbody tr', { hasText: 'write_file' });
    await row.waitFor();
    await expect(row.locator('td').nth(0).textContent()).resolves.toBe('agent_deploy_test');
    await expect(row.locator('td').nth(1).textContent()).resolves.toBe('deployer');
    await expect(row.locator('td').nth(4).textContent()).resolves.toMatch(/^59 min \d+ s$/);
    await expect(row.locator('td').nth(5).textContent()).resolves.toContain(XSS.replace(/"/g, '\\"'));
    expect(await page.locator('img').count()).toBe(0);
    // The token lives in this tab's sessionStorage, never in the URL.
    expect(page.url()).toBe(`${base}/console`);
    expect(await page.evaluate('sessionStorage.getItem("agentGateway.approverToken")')).toBe(ADMIN_TOKEN);

    // By keyboard: the row's button takes focus and Enter opens it.
    await row.getByRole('button', { name: /Open/ }).focus();
    await page.keyboard.press('Enter');
    const diff = page.locator('#preview-diff');
    await diff.waitFor();
    const diffText = await diff.textContent();
    expect(diffText).toContain('--- /workspace/notes/hello.txt\tnew file');
    expect(diffText).toContain('+hello from the agent');
    expect(diffText).toContain(`+${XSS}`);
    expect(await page.locator('#detail-arguments').textContent()).toContain(XSS.replace(/"/g, '\\"'));
    expect(await page.locator('#hidden-alert').isVisible()).toBe(false);
    expect(page.url()).toBe(`${base}/console#approval=${asked.body.approval_id}`);

    await page.getByLabel('Comment (optional)').fill('Looks right');
    await page.getByRole('button', { name: 'Approve and run' }).click();
    await waitForText(page.locator('#answer-summary'), 'Approved and executed.');
    expect(await page.locator('#answer-body').textContent()).toContain('"status": "executed"');
    expect(readFileSync(join(gw.workspace, 'notes/hello.txt'), 'utf8')).toBe(content);

    await page.getByRole('button', { name: 'Show audit records' }).click();
    await page.locator('#audit-table tbody tr').first().waitFor();
    const events = await page.locator('#audit-table tbody tr td:nth-child(2)').allTextContents();
    expect(events).toEqual(expect.arrayContaining(['decision', 'approval', 'outcome']));

    expect(await page.locator('img').count()).toBe(0);
    expect(await page.evaluate('window.__xss')).toBeUndefined();
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  }, 30_000);

  it('opens a linked delete with its preview, says so when someone else decided first, and why another approver may not open it', async () => {
    writeFileSync(join(gw.workspace, 'old.log'), 'first line\nsecond line\n');
    const asked = await gw.call('delete_file', { path: 'old.log' });
    expect(asked.status).toBe(202);
    const id = asked.body.approval_id;

    // The link a webhook message carries; the writer approver may not decide deletes.
    const { page, errors } = await openConsole(`/console#approval=${id}`);
    await signIn(page, ADMIN_TOKEN);
    await page.locator('#preview-text').waitFor();
    expect(await page.locator('#preview-text').textContent()).toBe('First lines:\nfirst line\nsecond line\n');
    expect(await page.locator('#preview-fields').textContent()).toContain('/workspace/old.log');

    expect((await gw.asApprover().decide(id, false, 'not today')).status).toBe(200);
    await page.getByRole('button', { name: 'Approve and run' }).click();
    await waitForText(page.locator('#answer-summary'), /^Not applied: this approval was already decided by someone else/);
    expect(await page.locator('#answer-body').textContent()).toContain('HTTP 409');
    expect(existsSync(join(gw.workspace, 'old.log'))).toBe(true);
    await page.context().close();

    const writer = await openConsole(`/console#approval=${id}`);
    await signIn(writer.page, WRITER_TOKEN);
    await waitForText(writer.page.locator('#notice'), /may not decide on tool "delete_file"/);
    await writer.page.context().close();
    expect(errors).toEqual([]);
  }, 30_000);

  it('shows hidden and direction-changing characters as <U+XXXX> and warns prominently about them (Trojan Source)', async () => {
    const content = [
      'function grant(isAdmin) {',
      '  /*\u202E } \u2066if (isAdmin)\u2069 \u2066 begin admins only */',
      '    grantAll();',
      '  /* end admins only \u202E { \u2066*/',
      '}',
      '',
    ].join('\n');
    const asked = await gw.call('write_file', { path: 'grant.js', content });
    expect(asked.status).toBe(202);

    const { page, errors } = await openConsole();
    await signIn(page, ADMIN_TOKEN);
    const row = page.locator('#pending-table tbody tr', { hasText: 'grant.js' });
    await row.waitFor();
    expect(await row.locator('.hidden-characters').textContent()).toContain('Hidden characters: U+202E (right-to-left override) in argument content, line 2');
    expect(await row.textContent()).toContain('/*<U+202E> } <U+2066>if (isAdmin)<U+2069>');

    await row.getByRole('button', { name: /Open/ }).click();
    const warning = page.locator('#preview-warnings li.hidden-characters');
    await warning.waitFor();
    expect(await warning.isVisible()).toBe(true);
    expect(await warning.textContent()).toMatch(
      /^Warning, hidden characters: Hidden or direction-changing characters, shown here as <U\+XXXX>: U\+202E \(right-to-left override\) in argument content, line 2;/,
    );
    expect(await page.locator('#preview-warnings li').first().getAttribute('class')).toBe('hidden-characters');
    const alert = page.locator('#hidden-alert');
    expect(await alert.isVisible()).toBe(true);
    expect(await alert.getAttribute('role')).toBe('alert');
    expect(await alert.textContent()).toContain('U+2066 (left-to-right isolate) ×2 in argument content, line 2');
    expect(await page.locator('#preview-diff').textContent()).toContain(
      '+  /*<U+202E> } <U+2066>if (isAdmin)<U+2069> <U+2066> begin admins only */\n+    grantAll();\n',
    );
    expect(await page.locator('#detail-arguments').textContent()).toContain('/*<U+202E> } <U+2066>if (isAdmin)<U+2069>');
    // Nowhere on the page is one drawn as the browser would draw it.
    expect(await page.evaluate('/[\\u202A-\\u202E\\u2066-\\u2069]/.test(document.body.textContent)')).toBe(false);

    // Approved, it writes exactly what was asked.
    await page.getByRole('button', { name: 'Approve and run' }).click();
    await waitForText(page.locator('#answer-summary'), 'Approved and executed.');
    expect(readFileSync(join(gw.workspace, 'grant.js'), 'utf8')).toBe(content);
    expect(errors).toEqual([]);
    await page.context().close();
  }, 30_000);

  it('tells an approver without audit permission why the audit records are not shown', async () => {
    const asked = await gw.call('write_file', { path: 'w.txt', content: 'w' });
    const { page } = await openConsole(`/console#approval=${asked.body.approval_id}`);
    await signIn(page, WRITER_TOKEN);
    await page.getByRole('button', { name: 'Show audit records' }).click();
    await waitForText(page.locator('#audit-note'), 'This approver may not read the audit log (it needs audit: true in gateway.yaml). Ask an operator.');
    await page.context().close();
  }, 30_000);

  it('says who is signed in; labels the listed arguments; keeps Approve / Reject in view beside a long diff; no tab lit in a request', async () => {
    const content = Array.from({ length: 400 }, (_, i) => `line ${i + 1} of a long file`).join('\n');
    const asked = await gw.call('write_file', { path: 'long.txt', content });
    expect(asked.status).toBe(202);
    const id = asked.body.approval_id;

    const { page, errors } = await openConsole();
    await page.setViewportSize({ width: 1280, height: 720 });
    await signIn(page, WRITER_TOKEN);
    await waitForText(page.locator('#session-label'), 'Signed in as writer');
    expect(await page.locator('#session-scope').textContent()).toBe('May decide on write_file; may not read the audit log.');
    // A reload keeps the session (the token is in this tab) and asks again who it is.
    await page.reload();
    await waitForText(page.locator('#session-label'), 'Signed in as writer');
    expect(await page.locator('#pending-table th').nth(5).textContent()).toBe('Arguments as sent, secrets hidden');
    expect(await page.locator('#arguments-legend').textContent()).toMatch(
      /^Arguments as sent: the arguments as the agent sent them, except values that look like secrets/,
    );
    expect(await page.locator('#show-pending').getAttribute('aria-pressed')).toBe('true');

    await page.locator(`#pending-table tr[data-approval="${id}"]`).getByRole('button', { name: /Open/ }).click();
    await page.locator('#preview-diff').waitFor();
    // A detail view is neither tab.
    expect(await page.locator('#show-pending').getAttribute('aria-pressed')).toBe('false');
    expect(await page.locator('#show-history').getAttribute('aria-pressed')).toBe('false');
    expect(await page.locator('#preview-title').textContent()).toMatch(/^Preview, computed now \(.+\)$/);

    // The form sits below the diff, far below the first screen, yet its buttons are on screen, at the top and in the middle of the diff.
    await page.evaluate('window.scrollTo(0, 0)');
    expect(await page.evaluate('document.getElementById("preview-block").getBoundingClientRect().bottom')).toBeGreaterThan(720 * 1.5);
    const inView = async (name: string) => {
      const box = await page.getByRole('button', { name }).boundingBox();
      return box !== null && box.y >= 0 && box.y + box.height <= 720;
    };
    expect(await inView('Approve and run')).toBe(true);
    expect(await inView('Reject')).toBe(true);
    await page.locator('#preview-diff').scrollIntoViewIfNeeded();
    expect(await inView('Approve and run')).toBe(true);

    await page.getByRole('button', { name: 'Approve and run' }).click();
    await waitForText(page.locator('#answer-summary'), 'Approved and executed.');
    // What was approved stays on the page: the diff, now said to be from before the decision, and the outcome.
    expect(await page.locator('#preview-diff').isVisible()).toBe(true);
    expect(await page.locator('#preview-diff').textContent()).toContain('+line 400 of a long file');
    expect(await page.locator('#preview-title').textContent()).toMatch(/^Preview, computed at .+, before the decision$/);
    await waitForText(page.locator('#detail-title'), 'Approval: write_file from agent_deploy_test (executed)');

    // And in History, the same request shows its outcome with the diff it was approved on.
    await page.getByRole('button', { name: 'History' }).click();
    expect(await page.locator('#show-history').getAttribute('aria-pressed')).toBe('true');
    const row = page.locator(`#history-table tr[data-approval="${id}"]`);
    await row.waitFor();
    expect(await row.locator('td').first().textContent()).toBe('executed');
    expect(await row.locator('td').nth(4).textContent()).toBe('writer');
    await row.getByRole('button', { name: /Open/ }).click();
    await waitForText(page.locator('#detail-title'), 'Approval: write_file from agent_deploy_test (executed)');
    expect(await page.locator('#preview-diff').textContent()).toContain('+line 1 of a long file');
    expect(await page.locator('#preview-title').textContent()).toMatch(/before the decision$/);
    expect(await page.locator('#decide-form').isVisible()).toBe(false);
    expect(await page.locator('#show-history').getAttribute('aria-pressed')).toBe('false');
    expect(errors).toEqual([]);
    await page.context().close();

    // A tab that did not see it before the decision says why it shows no preview, rather than one computed now.
    const later = await openConsole(`/console#approval=${id}`);
    await signIn(later.page, WRITER_TOKEN);
    await waitForText(later.page.locator('#preview-none'), /^No preview of a decided request/);
    expect(await later.page.locator('#preview-block').isVisible()).toBe(false);
    await later.page.context().close();
  }, 30_000);

  it('moves through the queue by keyboard, asks before a one-key decision, and never fires while typing', async () => {
    const first = await gw.call('write_file', { path: 'k1.txt', content: 'one' });
    const second = await gw.call('write_file', { path: 'k2.txt', content: 'two' });
    const [older, newer] = [first.body.approval_id as string, second.body.approval_id as string];

    const { page, dialogs, errors } = await openConsole();
    await signIn(page, ADMIN_TOKEN);
    await page.locator(`#pending-table tr[data-approval="${older}"]`).waitFor();
    const selected = () => page.locator('#pending-table tr.selected').getAttribute('data-approval');
    const focusedRow = () => page.evaluate('document.activeElement.closest("tr") && document.activeElement.closest("tr").getAttribute("data-approval")');

    // Newest first: j selects the first row, j the next, k (or the arrow) back; the Open button has the focus.
    await page.keyboard.press('j');
    expect(await selected()).toBe(newer);
    expect(await focusedRow()).toBe(newer);
    await page.keyboard.press('ArrowDown');
    expect(await selected()).toBe(older);
    await page.keyboard.press('k');
    expect(await selected()).toBe(newer);
    await page.keyboard.press('o');
    await waitForText(page.locator('#detail-title'), /^Approval: write_file from agent_deploy_test \(pending\)$/);
    expect(await page.locator('#detail-position').textContent()).toMatch(/^1 of \d+ in Pending/);
    expect(page.url()).toBe(`${base}/console#approval=${newer}`);
    // In a request, j opens the next one of the list.
    await page.keyboard.press('j');
    await waitForText(page.locator('#detail-position'), /^2 of \d+ in Pending/);
    expect(page.url()).toBe(`${base}/console#approval=${older}`);
    await page.locator('#preview-block').waitFor();

    // Typing in the comment is only typing.
    await page.getByLabel('Comment (optional)').fill('');
    await page.getByLabel('Comment (optional)').press('a');
    await page.getByLabel('Comment (optional)').press('r');
    await page.getByLabel('Comment (optional)').press('j');
    expect(await page.getByLabel('Comment (optional)').inputValue()).toBe('arj');
    expect(await page.locator('#confirm').isVisible()).toBe(false);
    expect(page.url()).toBe(`${base}/console#approval=${older}`);

    // r asks first; n (or Esc) cancels and nothing is decided.
    await page.locator('#detail-title').focus();
    await page.keyboard.press('r');
    expect(await page.locator('#confirm').isVisible()).toBe(true);
    expect(await page.locator('#confirm-text').textContent()).toBe('Reject write_file from agent_deploy_test?');
    expect(await page.evaluate('document.activeElement.id')).toBe('confirm-yes');
    await page.keyboard.press('n');
    expect(await page.locator('#confirm').isVisible()).toBe(false);
    expect((await gw.asApprover().get(`/api/approvals/${older}`)).body.status).toBe('pending');

    // a, then Enter on the focused Yes: approved with the comment typed.
    await page.keyboard.press('a');
    expect(await page.locator('#confirm-text').textContent()).toBe('Approve and run write_file from agent_deploy_test?');
    await page.keyboard.press('Enter');
    await waitForText(page.locator('#answer-summary'), 'Approved and executed.');
    expect(readFileSync(join(gw.workspace, 'k1.txt'), 'utf8')).toBe('one');
    const decided = (await gw.asApprover().get(`/api/approvals/${older}`)).body;
    expect(decided).toMatchObject({ status: 'executed', comment: 'arj', decided_by: 'admin' });
    expect(existsSync(join(gw.workspace, 'k2.txt'))).toBe(false);

    // ? shows the shortcuts, Esc hides them, Esc again goes back to the list (the Pending tab lit again).
    await page.locator('#detail-title').focus();
    await page.keyboard.press('?');
    expect(await page.locator('#shortcuts').isVisible()).toBe(true);
    expect(await page.locator('#shortcuts').textContent()).toContain('Shortcuts do nothing while you type in a field');
    await page.keyboard.press('Escape');
    expect(await page.locator('#shortcuts').isVisible()).toBe(false);
    await page.keyboard.press('Escape');
    await page.locator('#pending').waitFor();
    expect(await page.locator('#show-pending').getAttribute('aria-pressed')).toBe('true');
    expect(page.url()).toBe(`${base}/console`);

    // The one decided left the list: j starts again from the top. The audit table explains its terms.
    await page.keyboard.press('j');
    expect(await selected()).toBe(newer);
    await page.keyboard.press('Enter');
    await waitForText(page.locator('#detail-title'), /^Approval: write_file from agent_deploy_test \(pending\)$/);
    await page.getByRole('button', { name: 'Show audit records' }).click();
    const decision = page.locator('#audit-table tbody tr td:nth-child(2)', { hasText: 'decision' });
    await decision.first().waitFor();
    expect(await decision.first().getAttribute('title')).toBe("The policy's answer, written before anything runs");
    expect(await page.locator('#audit-table th', { hasText: 'Channel' }).getAttribute('title')).toBe('The door the request came through');
    await page.locator('#audit-legend summary').click();
    expect(await page.locator('#audit-legend').textContent()).toContain('mcp: a tool call through the MCP endpoint');

    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  }, 30_000);

  it('refuses a wrong token and keeps nothing of it', async () => {
    const { page } = await openConsole();
    await signIn(page, 'not-the-token');
    await waitForText(page.locator('#notice'), /^The gateway did not accept the token/);
    expect(await page.locator('#sign-in').isVisible()).toBe(true);
    expect(await page.evaluate('sessionStorage.getItem("agentGateway.approverToken")')).toBeNull();
    await page.context().close();
  }, 30_000);
});

/** Waits (up to 10 s) until the first element `locator` finds has this text; playwright-core has no expect of its own. */
async function waitForText(locator: Locator, expected: string | RegExp): Promise<void> {
  const until = Date.now() + 10_000;
  let text: string | null = null;
  while (Date.now() < until) {
    text = (await locator.count()) > 0 ? await locator.first().textContent() : null;
    if (text !== null && (typeof expected === 'string' ? text === expected : expected.test(text))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`expected the text ${String(expected)}, last saw ${JSON.stringify(text)}`);
}
