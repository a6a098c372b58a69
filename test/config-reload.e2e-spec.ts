import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { ConfigReloader } from '../src/health/config-reloader';
import { eventually } from './support/eventually';
import { HeldUpstream } from './support/held-upstream';
import { HMAC_SECRET, TestGateway } from './support/test-gateway';

const NEW_AGENT = 'agent_added_live';
const NEW_TOKEN = 'mcp-token-added-by-a-reload';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
/**
 * SIGHUP as Node delivers it: an event on `process`. (Jest gives the test its own `process`
 * object, so a real kill would reach the runner, not the gateway's handler.)
 */
const sighup = () => process.emit('SIGHUP', 'SIGHUP');

describe('live configuration: SIGHUP and a changed config file reload it without a restart', () => {
  let gw: TestGateway;
  let held: HeldUpstream;
  let mcpUrl: string;
  const secretDir = mkdtempSync(join(tmpdir(), 'reload-secret-'));
  const secretFile = join(secretDir, 'api_key');

  beforeAll(async () => {
    held = await new HeldUpstream().start();
    writeFileSync(secretFile, 'first-value-0123456789\n');
    gw = await new TestGateway({ captureLogs: true, extraTools: held.tool('slow_call'), secrets: `  API_KEY: { from: file, path: "${secretFile}" }` }).start();
    await gw.app.listen(0, '127.0.0.1');
    mcpUrl = `http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`;
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hello\n');
    // As main.ts does, with what the test config needs from the environment.
    gw.app.get(ConfigReloader).start({ GATEWAY_CONFIG: gw.configFile, TEST_DEPLOY_KEY: HMAC_SECRET }, { pollMs: 50, debounceMs: 300 });
  });
  afterAll(async () => {
    await gw.stop();
    await held.stop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  const yaml = () => readFileSync(gw.configFile, 'utf8');
  const reloads = () => gw.auditRecords().filter((record) => record.event === 'config_reload');
  /** Waits for the next config_reload record after `count` of them. */
  const nextReload = async (count: number) => {
    const found = await eventually(
      async () => reloads(),
      (records) => records.length > count,
    );
    expect(found.length).toBe(count + 1);
    return found[count] as {
      status: string;
      reason_code?: string;
      config: { trigger: string; changes: Record<string, Record<string, string[]>>; restart_required?: string[] };
    };
  };
  const mcpTools = async (token: string) => {
    const client = new Client({ name: 'reload-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    try {
      return (await client.listTools()).tools.map((tool) => tool.name);
    } finally {
      await client.close();
    }
  };

  it('SIGHUP: a new agent and its MCP token work at once, and the audit record names them (never the token or key)', async () => {
    await expect(mcpTools(NEW_TOKEN)).rejects.toThrow();
    expect((await gw.call('read_file', { path: '/workspace/hello.txt' }, { agent: NEW_AGENT })).status).toBe(401);

    const agent = `  - id: ${NEW_AGENT}
    role: reader
    key: { alg: hmac-sha256, secret: "\${env:TEST_DEPLOY_KEY}" }
    mcp_tokens: [{ token_sha256: "${sha256(NEW_TOKEN)}" }]
`;
    writeFileSync(gw.configFile, yaml().replace('agents:\n', `agents:\n${agent}`));
    const before = reloads().length;
    sighup();
    const record = await nextReload(before);

    expect(record).toMatchObject({ status: 'applied', config: { trigger: 'signal' } });
    expect(record.config.changes.agents).toEqual({ added: [NEW_AGENT] });
    expect(record.config.changes.tokens).toEqual({ added: [`${NEW_AGENT}/${sha256(NEW_TOKEN).slice(0, 8)}`] });
    const line = JSON.stringify(record);
    expect(line).not.toContain(NEW_TOKEN);
    expect(line).not.toContain(HMAC_SECRET);

    expect(await mcpTools(NEW_TOKEN)).toEqual(['approval_status', 'list_dir', 'read_file']);
    const call = await gw.call('read_file', { path: '/workspace/hello.txt' }, { agent: NEW_AGENT });
    expect(call.status).toBe(200);
    expect(call.body.result.content).toBe('hello\n');
  });

  it('a saved file: a removed tool is gone from GET /api/tools and refused; a setting read only at start is reported, not applied', async () => {
    expect((await gw.get('/api/tools')).body.tools.map((t: { name: string }) => t.name)).toContain('list_dir');
    const before = reloads().length;
    // Written in two steps, as some editors do: the watch waits for the file to settle.
    const text = yaml()
      .replace(/^ {2}list_dir: .*\n/m, '')
      .replace(/max_body_bytes: \d+/, 'max_body_bytes: 2048');
    writeFileSync(gw.configFile, text.slice(0, 200));
    await new Promise((resolve) => setTimeout(resolve, 100));
    writeFileSync(gw.configFile, text);
    const record = await nextReload(before);

    expect(record).toMatchObject({ status: 'applied', config: { trigger: 'file', changes: { tools: { removed: ['list_dir'] } } } });
    expect(record.config.restart_required).toEqual(['settings.max_body_bytes']);
    expect(record.config.changes.settings).toBeUndefined();
    const names = (await gw.get('/api/tools')).body.tools.map((t: { name: string }) => t.name);
    expect(names).not.toContain('list_dir');
    expect(names).toContain('read_file');
    const refused = await gw.call('list_dir', { path: '/workspace' });
    expect(refused.status).toBe(403);
    expect(refused.body.reason_code).toBe('tool_not_registered');
    // The old limit stays: a body over 2048 bytes still passes.
    const large = await gw.call('read_file', { path: '/workspace/hello.txt', pad: 'x'.repeat(4000) });
    expect([large.status, large.body.reason_code]).toEqual([400, 'invalid_arguments']);
    expect(gw.logLines.some((l) => l.includes('keep their running value until a restart: settings.max_body_bytes'))).toBe(true);
  });

  it('an invalid file is refused: the running config keeps serving, /readyz and the metric say so, the error log says why', async () => {
    const good = yaml();
    const before = reloads().length;
    writeFileSync(
      gw.configFile,
      good.replace('read_file:   { kind: fs.read, roles: [deployer, reader]', 'read_file:   { kind: fs.read, roles: [deployer, nobody]'),
    );
    const record = await nextReload(before);

    expect(record).toMatchObject({ status: 'refused', reason_code: 'config_reload_failed', config: { trigger: 'file', changes: {} } });
    const ready = await gw.http().get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', details: [{ reason_code: 'config_reload_failed' }] });
    expect(ready.body.details[0].message).not.toContain(gw.root);
    const metrics = (await gw.http().get('/metrics')).text;
    expect(metrics).toMatch(/^gateway_config_reload_failures_total 1$/m);
    expect(metrics).toMatch(/^gateway_config_last_reload_successful 0$/m);
    const error = gw.logLines.find((l) => l.includes('configuration reload refused'))!;
    expect(JSON.parse(error)).toMatchObject({ level: 50 });
    expect(error).toContain('tools.read_file.roles[1]: role \\"nobody\\" is not declared under roles');
    expect(error).not.toMatch(/\n\s+at /);
    expect(error).not.toContain('"stack"');
    // The running config still serves, new agent included.
    expect((await gw.call('read_file', { path: '/workspace/hello.txt' }, { agent: NEW_AGENT })).status).toBe(200);

    // Fixed: applied, and the detail is gone.
    writeFileSync(gw.configFile, good);
    expect((await nextReload(before + 1)).status).toBe('applied');
    expect((await gw.http().get('/readyz')).body).toEqual({ status: 'ready' });
    expect((await gw.http().get('/metrics')).text).toMatch(/^gateway_config_last_reload_successful 1$/m);
  });

  it('a rotated secret file is a reload that names the secret, never its value', async () => {
    const before = reloads().length;
    writeFileSync(secretFile, 'second-value-0123456789\n');
    const record = await nextReload(before);
    expect(record).toMatchObject({ status: 'applied', config: { trigger: 'file', changes: { secrets: { changed: ['API_KEY'] } } } });
    expect(JSON.stringify(record)).not.toContain('value-0123456789');
  });

  it('a call in flight during a reload that removes its tool completes on the configuration it started with', async () => {
    const inFlight = gw.call('slow_call', {});
    const pending = inFlight.then((res) => res);
    await eventually(
      async () => gw.auditRecords().some((r) => r.event === 'decision' && r.tool === 'slow_call'),
      (seen) => seen,
    );
    const before = reloads().length;
    writeFileSync(gw.configFile, yaml().replace(/^ {2}slow_call: .*\n/m, ''));
    sighup();
    expect((await nextReload(before)).config.changes.tools).toEqual({ removed: ['slow_call'] });
    expect((await gw.call('slow_call', {})).body.reason_code).toBe('tool_not_registered');

    held.release();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body.result).toMatchObject({ status: 200, body: { released: true } });
  });
});
