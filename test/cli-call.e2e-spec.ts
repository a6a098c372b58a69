import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { freePort } from './support/free-port';
import { HMAC_AGENT, HMAC_SECRET, TestGateway } from './support/test-gateway';

const REPO = join(__dirname, '..');
const BIN = join(REPO, 'bin', 'agent-gateway.mjs');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('npx agent-gateway call: a signed request from the command line, against a running gateway', () => {
  let gw: TestGateway;
  let base: string;

  beforeAll(async () => {
    gw = await new TestGateway().start();
    await gw.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}`;
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hello from the workspace\n');
  });
  afterAll(() => gw.stop());

  /** The bin script as npx runs it, in its own process (the gateway in this one keeps answering). */
  function cli(args: string[], env: Record<string, string> = {}, bin = BIN): Promise<Run> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [bin, ...args],
        {
          cwd: gw.root,
          env: {
            PATH: process.env.PATH,
            GATEWAY_CONFIG: gw.configFile,
            GATEWAY_WORKSPACE: gw.workspace,
            GATEWAY_DATA_DIR: gw.dataDir,
            TEST_DEPLOY_KEY: HMAC_SECRET,
            GATEWAY_URL: base,
            ...env,
          },
          timeout: 60_000,
        },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });
  }

  it('prints only the JSON body on stdout (it parses whole, as jq would) and the status on stderr', async () => {
    const run = await cli(['call', '--agent', HMAC_AGENT, '--tool', 'read_file', '--args', '{"path":"hello.txt"}']);
    expect(run.stderr).toMatch(/(^|\n)HTTP 200\n$/);
    expect(run.code).toBe(0);
    const body = JSON.parse(run.stdout);
    expect(body).toMatchObject({ status: 'executed', result: { content: 'hello from the workspace\n' } });
    expect(run.stdout).not.toContain('HTTP');
    expect(run.stdout).not.toContain('> agent-gateway');
  }, 60_000);

  it('keeps a refusal on stdout as JSON too, with the status on stderr and exit code 1', async () => {
    const run = await cli(['call', '--agent', HMAC_AGENT, '--tool', 'no_such_tool']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/(^|\n)HTTP 403\n$/);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 'denied', reason_code: 'tool_not_registered' });
  }, 60_000);

  it('names the flag that held bad JSON, shows what it held, and sends nothing', async () => {
    const before = gw.auditRecords().length;
    const run = await cli(['call', '--agent', HMAC_AGENT, '--tool', 'read_file', '--args', "{path: 'hello.txt'}"]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^call: --args is not valid JSON \(.+\): "\{path: 'hello.txt'\}"\nusage: npx agent-gateway call/);
    expect(gw.auditRecords().length).toBe(before);
  }, 60_000);

  it('names the URL it could not reach and why', async () => {
    const port = await freePort();
    const run = await cli(['call', '--agent', HMAC_AGENT, '--list', '--url', `http://127.0.0.1:${port}`]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `call: could not reach http://127.0.0.1:${port}/api/tools (connect ECONNREFUSED 127.0.0.1:${port}); is the gateway running there? Set --url or GATEWAY_URL\n`,
    );
  }, 60_000);

  it('says what is wrong with the command line: an unknown option, a missing action, an unknown command', async () => {
    const unknown = await cli(['call', '--agent', HMAC_AGENT, '--tol', 'read_file']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^call: Unknown option '--tol'/);
    const missing = await cli(['call', '--agent', HMAC_AGENT]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^call: say which agent \(--agent\) and what to do \(--tool, --list or --get\)\nusage:/);
    const command = await cli(['cal']);
    expect(command.code).toBe(2);
    expect(command.stderr).toMatch(/^agent-gateway: unknown command "cal"\nusage: npx agent-gateway <command> \[options\]\n {2}call /);
    expect(command.stdout).toBe('');
  }, 60_000);

  it('builds what it runs: from a checkout with no dist/ yet, the first call compiles and answers', async () => {
    const checkout = join(gw.root, 'checkout');
    mkdirSync(checkout);
    for (const part of ['bin', '.build', 'src', 'package.json']) cpSync(join(REPO, part), join(checkout, part), { recursive: true });
    symlinkSync(join(REPO, 'node_modules'), join(checkout, 'node_modules'));
    const bin = join(checkout, 'bin', 'agent-gateway.mjs');
    const run = await cli(['call', '--agent', HMAC_AGENT, '--tool', 'read_file', '--args', '{"path":"hello.txt"}'], {}, bin);
    expect(run.stderr).toMatch(/^build: (\d+) of \1 files compiled, 0 removed \(\d+ ms\)\nHTTP 200\n$/);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 'executed' });
    expect(existsSync(join(checkout, 'dist', 'cli', 'call.js'))).toBe(true);
    // Built once: the next run compiles nothing and says nothing about it.
    expect((await cli(['call', '--agent', HMAC_AGENT, '--list'], {}, bin)).stderr).toBe('HTTP 200\n');
  }, 90_000);
});
