import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { TestGateway } from './support/test-gateway';

/** URL placeholders cannot walk the upstream path (`..` and `.` segments, also percent-encoded). */
describe('http tools: URL placeholders stay one path segment', () => {
  const seen: string[] = [];
  let upstream: Server;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      seen.push(req.url!);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: req.url }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const strings = (...names: string[]) =>
      `{ type: object, required: [${names.join(', ')}], properties: { ${names.map((n) => `${n}: { type: string }`).join(', ')} } }`;
    gw = new TestGateway({
      extraTools: [
        `  list_issues: { kind: http, roles: [deployer], request: { method: GET, url: "${base}/repos/{owner}/{repo}/issues" }, allowed_hosts: [127.0.0.1], input_schema: ${strings('owner', 'repo')} }`,
        `  dotted: { kind: http, roles: [deployer], request: { method: GET, url: "${base}/files/.{ext}/%2e{rest}/x" }, allowed_hosts: [127.0.0.1], input_schema: ${strings('ext', 'rest')} }`,
        `  search: { kind: http, roles: [deployer], request: { method: GET, url: "${base}/search?q={q}" }, allowed_hosts: [127.0.0.1], input_schema: ${strings('q')} }`,
      ].join('\n'),
    });
    await gw.start();
  });
  afterAll(async () => {
    await gw.stop();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it.each([
    ['".." twice (would reach /issues)', { owner: '..', repo: '..' }, '/owner'],
    ['".." then "admin" (would reach /admin/issues)', { owner: '..', repo: 'admin' }, '/owner'],
    ['"x" then ".." (would reach /repos/issues)', { owner: 'x', repo: '..' }, '/repo'],
    ['"."', { owner: '.', repo: 'site' }, '/owner'],
  ])('refuses a value of %s with 400 invalid_arguments, before anything is sent', async (_name, args, instancePath) => {
    const before = seen.length;
    const res = await gw.call('list_issues', args);
    expect({ http: res.status, status: res.body.status, reason_code: res.body.reason_code }).toEqual({
      http: 400,
      status: 'invalid_arguments',
      reason_code: 'invalid_arguments',
    });
    expect(res.body.details).toEqual([{ instancePath, message: 'must not make a "." or ".." segment of the URL path' }]);
    expect(seen.length).toBe(before);
  });

  it.each([
    ['a value that completes "." in the template to ".."', { ext: '.', rest: 'a' }, '/ext'],
    ['a value that completes "%2e" in the template to "%2e."', { ext: 'txt', rest: '.' }, '/rest'],
  ])('refuses %s', async (_name, args, instancePath) => {
    const before = seen.length;
    const res = await gw.call('dotted', args);
    expect(res.status).toBe(400);
    expect(res.body.details).toEqual([expect.objectContaining({ instancePath })]);
    expect(seen.length).toBe(before);
  });

  it.each([
    ['percent-encoded dots, sent as literal text', { owner: '%2e%2e', repo: '%2E' }, '/repos/%252e%252e/%252E/issues'],
    ['three dots and dotted names', { owner: '...', repo: 'a..b' }, '/repos/.../a..b/issues'],
    ['a slash, encoded inside its segment', { owner: '../admin', repo: 'x' }, '/repos/..%2Fadmin/x/issues'],
  ])('sends %s as one segment each', async (_name, args, path) => {
    const res = await gw.call('list_issues', args);
    expect(res.status).toBe(200);
    expect(seen[seen.length - 1]).toBe(path);
  });

  it('leaves ".." alone outside the path (in the query)', async () => {
    const res = await gw.call('search', { q: '..' });
    expect(res.status).toBe(200);
    expect(seen[seen.length - 1]).toBe('/search?q=..');
  });
});
