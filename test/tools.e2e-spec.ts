import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, existsSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { signRequestHeaders } from '../src/auth/signature';
import { ED_AGENT, envelope, HMAC_AGENT, HMAC_SECRET, TestGateway } from './support/test-gateway';

describe('POST /api/tools/call and GET /api/tools', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await new TestGateway().start();
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hello, agent\n');
    mkdirSync(join(gw.workspace, 'docs'));
    writeFileSync(join(gw.workspace, 'docs', 'a.md'), '# A');
  });
  afterAll(() => gw.stop());

  const expectError = (res: { status: number; body: Record<string, unknown> }, status: number, state: string, reason: string) => {
    expect({ http: res.status, status: res.body.status, reason_code: res.body.reason_code }).toEqual({ http: status, status: state, reason_code: reason });
    expect(res.body.success).toBe(false);
    expect(res.body.audit_id).toMatch(/^audit_[0-9a-f]{32}$/);
    expect(JSON.stringify(res.body)).not.toContain(gw.root);
    expect(JSON.stringify(res.body)).not.toMatch(/\bat .+\.(ts|js):\d+/);
  };

  describe('happy paths of every fs kind', () => {
    it('reads a file (HMAC agent)', async () => {
      const res = await gw.call('read_file', { path: '/workspace/hello.txt' }, { requestId: 'req_read_1' });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        success: true,
        status: 'executed',
        result: { path: '/workspace/hello.txt', content: 'hello, agent\n', size: 13 },
        audit_id: expect.stringMatching(/^audit_/),
        request_id: 'req_read_1',
      });
    });

    it('reads a file by relative path (Ed25519 agent)', async () => {
      const res = await gw.call('read_file', { path: 'docs/a.md' }, { agent: ED_AGENT });
      expect(res.status).toBe(200);
      expect(res.body.result).toEqual({ path: '/workspace/docs/a.md', content: '# A', size: 3 });
    });

    it('lists a directory', async () => {
      const res = await gw.call('list_dir', { path: '/workspace' });
      expect(res.status).toBe(200);
      expect(res.body.result.path).toBe('/workspace');
      expect(res.body.result.entries).toEqual(
        expect.arrayContaining([
          { name: 'docs', type: 'dir', size: 0 },
          { name: 'hello.txt', type: 'file', size: 13 },
        ]),
      );
    });

    it('writes a file atomically, creating directories when asked, leaving no temp file', async () => {
      const res = await gw.call('write_now', { path: '/workspace/out/new.txt', content: 'written ✓', create_dirs: true });
      expect(res.status).toBe(200);
      expect(res.body.result).toEqual({ path: '/workspace/out/new.txt', size: Buffer.byteLength('written ✓') });
      expect(readFileSync(join(gw.workspace, 'out', 'new.txt'), 'utf8')).toBe('written ✓');
      expect(readdirSync(join(gw.workspace, 'out'))).toEqual(['new.txt']);
    });

    it('overwrites an existing file', async () => {
      writeFileSync(join(gw.workspace, 'over.txt'), 'old');
      const res = await gw.call('write_now', { path: 'over.txt', content: 'new' });
      expect(res.status).toBe(200);
      expect(readFileSync(join(gw.workspace, 'over.txt'), 'utf8')).toBe('new');
    });

    it('deletes a file', async () => {
      writeFileSync(join(gw.workspace, 'doomed.txt'), 'bye');
      const res = await gw.call('delete_now', { path: '/workspace/doomed.txt' });
      expect(res.status).toBe(200);
      expect(res.body.result).toEqual({ path: '/workspace/doomed.txt', deleted: true });
      expect(existsSync(join(gw.workspace, 'doomed.txt'))).toBe(false);
    });

    it('answers 202 pending_approval for a tool that requires approval, and writes nothing', async () => {
      const res = await gw.call('write_file', { path: 'pending.txt', content: 'not yet' }, { requestId: 'req_pending_1' });
      expect(res.status).toBe(202);
      expect(res.body).toEqual({
        success: false,
        status: 'pending_approval',
        approval_id: expect.stringMatching(/^approv_[0-9a-f]{32}$/),
        expires_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        error: 'Human approval required',
        audit_id: expect.stringMatching(/^audit_/),
        request_id: 'req_pending_1',
      });
      expect(existsSync(join(gw.workspace, 'pending.txt'))).toBe(false);
    });
  });

  describe('tool errors', () => {
    it('answers 502 tool_error for a missing file, without the host path', async () => {
      const res = await gw.call('read_file', { path: 'missing.txt' });
      expectError(res, 502, 'tool_error', 'tool_error');
      expect(res.body.error).toBe('No such file or directory: /workspace/missing.txt');
    });

    it('refuses to read a directory or to delete one', async () => {
      expectError(await gw.call('read_file', { path: 'docs' }), 502, 'tool_error', 'tool_error');
      expectError(await gw.call('delete_now', { path: 'docs' }), 403, 'denied', 'directory_not_deletable');
      expect(existsSync(join(gw.workspace, 'docs'))).toBe(true);
    });

    it('reads a file larger than the synchronous read size whole', async () => {
      const text = 'line of text ✓\n'.repeat(20_000); // ~340 KB, read through the thread pool
      writeFileSync(join(gw.workspace, 'large.txt'), text);
      const res = await gw.call('read_file', { path: 'large.txt' });
      expect(res.status).toBe(200);
      expect(res.body.result).toEqual({ path: '/workspace/large.txt', content: text, size: Buffer.byteLength(text) });
    });

    it('refuses a FIFO at once instead of waiting for a writer (one never comes)', async () => {
      execFileSync('mkfifo', [join(gw.workspace, 'pipe')]);
      const res = await gw.call('read_file', { path: 'pipe' }); // read_file's timeout (10 s) is over the test's (5 s)
      expectError(res, 502, 'tool_error', 'tool_error');
      expect(res.body.error).toBe('Not a regular file: /workspace/pipe');
    });

    it('refuses a file over 1 MiB', async () => {
      writeFileSync(join(gw.workspace, 'big.txt'), Buffer.alloc(1024 * 1024 + 1, 'a'));
      const res = await gw.call('read_file', { path: 'big.txt' });
      expectError(res, 502, 'tool_error', 'tool_error');
      expect(res.body.error).toContain('larger than 1 MiB');
    });
  });

  describe('401 unauthenticated', () => {
    const body = () => JSON.stringify(envelope(HMAC_AGENT, 'read_file', { path: 'hello.txt' }));
    const send = (headers: Record<string, string>, raw = body()) =>
      gw
        .http()
        .post('/api/tools/call')
        .set({ 'Content-Type': 'application/json', ...headers })
        .send(raw);
    const signed = (raw = body(), agent = HMAC_AGENT, now?: number) =>
      signRequestHeaders(agent, { alg: 'hmac-sha256', secret: HMAC_SECRET }, 'POST', '/api/tools/call', raw, now);

    it('without signature headers: missing_signature', async () => {
      expectError(await send({}), 401, 'unauthenticated', 'missing_signature');
    });

    it('with an empty signature header: missing_signature', async () => {
      expectError(await send({ ...signed(), 'X-Agent-Signature': '' }), 401, 'unauthenticated', 'missing_signature');
    });

    it.each([
      ['a signature that is not base64', { 'X-Agent-Signature': 'not base64!!' }],
      ['a huge signature', { 'X-Agent-Signature': 'A'.repeat(8000) }],
      ['a timestamp that is not a number', { 'X-Agent-Timestamp': '12:00' }],
      ['an agent id with a space', { 'X-Agent-Id': 'agent one' }],
    ])('with %s: malformed_headers', async (_name, override) => {
      expectError(await send({ ...signed(), ...override }), 401, 'unauthenticated', 'malformed_headers');
    });

    it('for an unknown agent: unknown_agent', async () => {
      const raw = JSON.stringify(envelope('agent_nobody', 'read_file', { path: 'hello.txt' }));
      expectError(await send(signed(raw, 'agent_nobody'), raw), 401, 'unauthenticated', 'unknown_agent');
    });

    it('for a body changed after signing: bad_signature', async () => {
      const headers = signed();
      const tampered = body().replace('hello.txt', 'other.txt');
      expectError(await send(headers, tampered), 401, 'unauthenticated', 'bad_signature');
    });

    it('for a signature made with another key: bad_signature', async () => {
      const raw = body();
      const forged = signRequestHeaders(HMAC_AGENT, { alg: 'hmac-sha256', secret: 'some-other-secret-value' }, 'POST', '/api/tools/call', raw);
      expectError(await send(forged, raw), 401, 'unauthenticated', 'bad_signature');
    });

    it('for an Ed25519 agent signed with a foreign key: bad_signature', async () => {
      const raw = JSON.stringify(envelope(ED_AGENT, 'read_file', { path: 'hello.txt' }));
      const { privateKey } = generateKeyPairSync('ed25519');
      const headers = signRequestHeaders(ED_AGENT, { alg: 'ed25519', privateKey }, 'POST', '/api/tools/call', raw);
      expectError(await send(headers, raw), 401, 'unauthenticated', 'bad_signature');
    });

    it('for a signature over another path: bad_signature', async () => {
      const raw = body();
      const headers = signRequestHeaders(HMAC_AGENT, { alg: 'hmac-sha256', secret: HMAC_SECRET }, 'POST', '/api/tools/call?x=1', raw);
      expectError(await send(headers, raw), 401, 'unauthenticated', 'bad_signature');
    });

    it.each([
      ['too old', Math.floor(Date.now() / 1000) - 120],
      ['in the future', Math.floor(Date.now() / 1000) + 120],
      ['in milliseconds', Date.now()],
    ])('for a timestamp %s: timestamp_out_of_range', async (_name, ts) => {
      expectError(await send(signed(body(), HMAC_AGENT, ts)), 401, 'unauthenticated', 'timestamp_out_of_range');
    });

    it('when the body agent_id is not X-Agent-Id: agent_id_mismatch', async () => {
      const raw = JSON.stringify(envelope(ED_AGENT, 'read_file', { path: 'hello.txt' }));
      expectError(await send(signed(raw), raw), 401, 'unauthenticated', 'agent_id_mismatch');
    });

    it('for GET /api/tools without a signature', async () => {
      expectError(await gw.http().get('/api/tools'), 401, 'unauthenticated', 'missing_signature');
    });

    it('is checked before the envelope and the policy (an unsigned call to an unknown tool is 401)', async () => {
      const raw = JSON.stringify({ nonsense: true, tool: 'rm_rf' });
      expectError(await send({}, raw), 401, 'unauthenticated', 'missing_signature');
    });
  });

  describe('400 / 413 / 415 invalid_request', () => {
    it('malformed JSON: 400 malformed_json', async () => {
      expectError(await gw.post('/api/tools/call', '{"agent_id": '), 400, 'invalid_request', 'malformed_json');
    });

    it('a body that is not JSON: 415', async () => {
      const res = await gw.http().post('/api/tools/call').set('Content-Type', 'text/plain').send('read_file hello.txt');
      expectError(res, 415, 'invalid_request', 'unsupported_media_type');
    });

    it('a body over max_body_bytes: 413', async () => {
      const res = await gw.call('write_now', { path: 'x.txt', content: 'x'.repeat(70_000) });
      expectError(res, 413, 'invalid_request', 'body_too_large');
      expect(existsSync(join(gw.workspace, 'x.txt'))).toBe(false);
    });

    it.each([
      ['an unknown top-level field', { ...envelope(HMAC_AGENT, 'read_file', { path: 'a' }), extra: 1 }],
      ['a missing request_id', { agent_id: HMAC_AGENT, agent_version: '1.0.0', tool: 'read_file', arguments: {} }],
      ['a request_id with a space', envelope(HMAC_AGENT, 'read_file', { path: 'a' }, { requestId: 'req 1' })],
      ['arguments that are an array', envelope(HMAC_AGENT, 'read_file', ['a'])],
      ['an agent_version of 65 chars', envelope(HMAC_AGENT, 'read_file', { path: 'a' }, { version: '1'.repeat(65) })],
      ['a JSON array body', [1, 2]],
    ])('%s: 400 invalid_envelope', async (_name, body) => {
      expectError(await gw.post('/api/tools/call', body), 400, 'invalid_request', 'invalid_envelope');
    });

    it('arguments nested 65 levels deep: 400 arguments_too_deep', async () => {
      let deep: unknown = 'x';
      for (let i = 0; i < 64; i++) deep = { a: deep };
      expectError(await gw.call('read_file', { path: 'a', deep }), 400, 'invalid_request', 'arguments_too_deep');
    });

    it('arguments nested 64 levels deep pass the depth check (and reach the schema)', async () => {
      let deep: unknown = 'x';
      for (let i = 0; i < 63; i++) deep = { a: deep };
      expectError(await gw.call('read_file', { path: 'a', deep }), 400, 'invalid_arguments', 'invalid_arguments');
    });

    it('a 10,000-deep array is refused and the gateway keeps serving', async () => {
      const raw = JSON.stringify(envelope(HMAC_AGENT, 'read_file', { path: 'a', x: 0 })).replace('"x":0', `"x":${'['.repeat(10_000)}${']'.repeat(10_000)}`);
      expectError(await gw.post('/api/tools/call', raw), 400, 'invalid_request', 'arguments_too_deep');
      expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200);
    });

    it('arguments against the tool schema: 400 invalid_arguments with ajv details', async () => {
      const res = await gw.call('read_file', { path: 42 });
      expectError(res, 400, 'invalid_arguments', 'invalid_arguments');
      expect(res.body.details).toEqual([expect.objectContaining({ instancePath: '/path', keyword: 'type', message: 'must be string' })]);
    });
  });

  describe('403 denied', () => {
    it.each([['Read_File'], [' read_file'], ['read_file '], ['rm_rf']])('tool %j is not registered (exact names only)', async (tool) => {
      expectError(await gw.call(tool, { path: 'hello.txt' }), 403, 'denied', 'tool_not_registered');
    });

    it('an agent_version outside the agent versions: agent_version_not_allowed', async () => {
      expectError(await gw.call('read_file', { path: 'hello.txt' }, { agent: ED_AGENT, version: '3.1.0' }), 403, 'denied', 'agent_version_not_allowed');
      expect((await gw.call('read_file', { path: 'hello.txt' }, { agent: ED_AGENT, version: '2.0.0' })).status).toBe(200);
      expect((await gw.call('read_file', { path: 'hello.txt' }, { agent: ED_AGENT, version: '1.9.3' })).status).toBe(200);
    });

    it("a tool outside the agent's role: tool_not_allowed_for_role", async () => {
      expectError(await gw.call('write_file', { path: 'a', content: 'b' }, { agent: ED_AGENT }), 403, 'denied', 'tool_not_allowed_for_role');
      expect(existsSync(join(gw.workspace, 'a'))).toBe(false);
    });

    it.each([
      ['at the top, in another case', { path: 'hello.txt', PASSWORD: 'x' }, 'arguments.PASSWORD'],
      ['with dashes instead of underscores', { path: 'hello.txt', meta: { 'Access-Token': 'x' } }, 'arguments.meta.Access-Token'],
      ['inside an array, deep', { path: 'hello.txt', a: [{ b: [{ c: { api_key: 1 } }] }] }, 'arguments.a[0].b[0].c.api_key'],
      ['from the tool own list', { path: 'hello.txt', WebhookURL: 'x' }, 'arguments.WebhookURL'],
    ])('a forbidden field %s: forbidden_field', async (_name, args, path) => {
      const res = await gw.call('configure', args);
      expectError(res, 403, 'denied', 'forbidden_field');
      expect(res.body.details).toEqual([{ path }]);
    });

    it('a forbidden key is found before the schema is checked (row 10 before row 11)', async () => {
      expectError(await gw.call('read_file', { path: 'hello.txt', secret: 1 }), 403, 'denied', 'forbidden_field');
    });

    it('a near miss is not forbidden (key "tokens_used" is not "token")', async () => {
      expect((await gw.call('configure', { path: 'hello.txt', tokens_used: 3 })).status).toBe(200);
    });

    it.each([
      ['a .. segment', '../outside.txt'],
      ['a .. inside /workspace', '/workspace/docs/../../outside.txt'],
      ['another absolute path', '/etc/passwd'],
      ['a look-alike prefix', '/workspacex/a.txt'],
      ['a NUL byte', 'hello.txt\u0000.md'],
    ])('a path with %s: path_outside_workspace', async (_name, path) => {
      expectError(await gw.call('read_file', { path }), 403, 'denied', 'path_outside_workspace');
    });

    it('refuses a symlink that leads out of the workspace, for reads, writes and deletes', async () => {
      writeFileSync(join(gw.root, 'secret.txt'), 'outside');
      symlinkSync(join(gw.root, 'secret.txt'), join(gw.workspace, 'link.txt'));
      symlinkSync(gw.root, join(gw.workspace, 'linkdir'));
      expectError(await gw.call('read_file', { path: 'link.txt' }), 403, 'denied', 'path_outside_workspace');
      expectError(await gw.call('read_file', { path: 'linkdir/secret.txt' }), 403, 'denied', 'path_outside_workspace');
      expectError(await gw.call('write_now', { path: 'linkdir/new.txt', content: 'x' }), 403, 'denied', 'path_outside_workspace');
      expectError(await gw.call('delete_now', { path: 'link.txt' }), 403, 'denied', 'path_outside_workspace');
      expect(readFileSync(join(gw.root, 'secret.txt'), 'utf8')).toBe('outside');
      expect(existsSync(join(gw.root, 'new.txt'))).toBe(false);
    });

    it('refuses a dangling symlink that would create a file outside', async () => {
      symlinkSync(join(gw.root, 'planted.txt'), join(gw.workspace, 'dangling.txt'));
      expectError(await gw.call('write_now', { path: 'dangling.txt', content: 'x' }), 403, 'denied', 'path_outside_workspace');
      expect(existsSync(join(gw.root, 'planted.txt'))).toBe(false);
    });

    it('checks the path before asking for approval', async () => {
      expectError(await gw.call('write_file', { path: '../x', content: 'x' }), 403, 'denied', 'path_outside_workspace');
    });

    it('follows a symlink that stays inside the workspace', async () => {
      symlinkSync(join(gw.workspace, 'hello.txt'), join(gw.workspace, 'alias.txt'));
      const res = await gw.call('read_file', { path: 'alias.txt' });
      expect(res.status).toBe(200);
      expect(res.body.result.content).toBe('hello, agent\n');
    });
  });

  describe('GET /api/tools', () => {
    it("lists the agent's tools in name order, as function definitions", async () => {
      const res = await gw.get('/api/tools');
      expect(res.status).toBe(200);
      expect(res.body.tools.map((t: { name: string }) => t.name)).toEqual([
        'configure',
        'delete_file',
        'delete_now',
        'limited_read',
        'list_dir',
        'read_file',
        'write_file',
        'write_now',
      ]);
      expect(res.body.tools.find((t: { name: string }) => t.name === 'read_file')).toEqual({
        name: 'read_file',
        description: 'Read a file',
        input_schema: { type: 'object', required: ['path'], additionalProperties: false, properties: { path: { type: 'string', minLength: 1 } } },
        requires_approval: false,
        timeout_ms: 10000,
      });
    });

    it("shows a reader only its role's tools", async () => {
      const res = await gw.get('/api/tools', ED_AGENT);
      expect(res.status).toBe(200);
      expect(res.body.tools.map((t: { name: string }) => t.name)).toEqual(['list_dir', 'read_file']);
    });
  });

  describe('health and docs', () => {
    it('serves /healthz, /readyz and the OpenAPI document without a signature', async () => {
      expect((await gw.http().get('/healthz')).body).toEqual({ status: 'ok' });
      expect((await gw.http().get('/readyz')).status).toBe(200);
      const doc = (await gw.http().get('/docs-json')).body;
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/tools', '/api/tools/call', '/healthz', '/readyz']));
      expect(Object.keys(doc.paths['/api/tools/call'].post.responses)).toEqual(
        expect.arrayContaining(['200', '202', '400', '401', '403', '413', '415', '502', '504']),
      );
      expect(doc.components.securitySchemes).toHaveProperty('agent_signature');
    });

    it('answers an unknown route with the error body', async () => {
      expectError(await gw.http().get('/nope'), 404, 'not_found', 'not_found');
    });
  });
});
