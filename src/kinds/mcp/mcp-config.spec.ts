import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGatewayConfig } from '../../config/config.loader';
import { KIND_CONFIGS } from '..';
import { mcpServersOf } from './mcp-tool';
import { canonicalJson, definitionSha256, mcpLockPath, writeMcpLock } from './mcp-lock';

const definition = {
  name: 'search',
  description: 'Search the tracker',
  inputSchema: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    required: ['q'],
    properties: { q: { type: 'string', 'x-ui': 'wide' }, tags: { type: 'array', prefixItems: [{ type: 'string' }], items: false } },
  },
};

function config(servers: string, tools: string, secrets = '{}'): string {
  return `
roles: { deployer: {} }
agents:
  - { id: a1, role: deployer, key: { alg: hmac-sha256, secret: "0123456789abcdef0123" } }
secrets: ${secrets}
mcp_servers:
${servers}
tools:
${tools}
`;
}

describe('mcp_servers and kind: mcp in gateway.yaml', () => {
  let dir: string;
  let file: string;
  const load = (text: string) => parseGatewayConfig(text, file, {}, { kinds: KIND_CONFIGS });
  const pin = (tools: Record<string, { server: string; tool: string; definition?: typeof definition; sha256?: string }>) =>
    writeMcpLock(mcpLockPath(file), {
      version: 1,
      tools: Object.fromEntries(
        Object.entries(tools).map(([name, t]) => [
          name,
          { server: t.server, tool: t.tool, definition: t.definition ?? definition, sha256: t.sha256 ?? definitionSha256(t.definition ?? definition) },
        ]),
      ),
    });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-config-'));
    file = join(dir, 'gateway.yaml');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const http = '  tracker: { url: "https://mcp.example.com/mcp", allowed_hosts: [mcp.example.com], headers: { Authorization: "Bearer ${secret:T}" } }';
  const tool = '  t_search: { kind: mcp, server: tracker, tool: search, roles: [deployer] }';

  it('fills an mcp tool from its pin: description, input schema (an upstream one, compiled leniently), the server timeout', () => {
    pin({ t_search: { server: 'tracker', tool: 'search' } });
    const loaded = load(config(http, tool, '{ T: { from: env, name: T } }'));
    const t = loaded.tools.get('t_search')!;
    expect(t).toMatchObject({
      kind: 'mcp',
      description: 'Search the tracker',
      input_schema: definition.inputSchema,
      timeout_ms: 30000,
      requires_approval: false,
    });
    expect(t.mcp).toEqual({ server: 'tracker', tool: 'search', pinned: { sha256: definitionSha256(definition), definition } });
    expect(t.validateArguments({ q: 'x' })).toBe(true);
    expect(t.validateArguments({ q: 1 })).toBe(false);
    // Its dialect (2020-12) decides: one string, then nothing.
    expect(t.validateArguments({ q: 'x', tags: ['a'] })).toBe(true);
    expect(t.validateArguments({ q: 'x', tags: ['a', 'b'] })).toBe(false);
    expect(mcpServersOf(loaded).get('tracker')).toMatchObject({ transport: 'http', url: 'https://mcp.example.com/mcp', allowed_hosts: ['mcp.example.com'] });
  });

  it("lets the config's own description, input_schema and timeout_ms win over the pin", () => {
    pin({ t_search: { server: 'tracker', tool: 'search' } });
    const own =
      '  t_search: { kind: mcp, server: tracker, tool: search, roles: [deployer], description: Ours, timeout_ms: 700, input_schema: { type: object, properties: { q: { type: string, maxLength: 3 } } } }';
    const t = load(config(http, own, '{ T: { from: env, name: T } }')).tools.get('t_search')!;
    expect(t).toMatchObject({ description: 'Ours', timeout_ms: 700 });
    expect(t.validateArguments({ q: 'long' })).toBe(false);
  });

  it.each([
    [
      'both url and command',
      '  s: { url: "https://a.example/mcp", allowed_hosts: [a.example], command: [node] }',
      'mcp_servers.s: give either url (Streamable HTTP) or command (stdio)',
    ],
    ['neither', '  s: { timeout_ms: 5 }', 'mcp_servers.s: give either url (Streamable HTTP) or command (stdio)'],
    [
      'a url host not allowed',
      '  s: { url: "https://b.example/mcp", allowed_hosts: [a.example] }',
      'mcp_servers.s.url: host "b.example" is not in allowed_hosts',
    ],
    ['no allowed_hosts', '  s: { url: "https://a.example/mcp" }', 'mcp_servers.s: missing required field "allowed_hosts"'],
    ['a url that is not http', '  s: { url: "file:///etc/passwd", allowed_hosts: [a.example] }', 'mcp_servers.s.url: must be http or https'],
    ['credentials in the url', '  s: { url: "https://u:p@a.example/mcp", allowed_hosts: [a.example] }', 'mcp_servers.s.url: must not hold credentials'],
    ['headers on a stdio server', '  s: { command: [node, s.js], headers: { A: b } }', 'mcp_servers.s.headers: is for url (Streamable HTTP) servers'],
    [
      'env on an http server',
      '  s: { url: "https://a.example/mcp", allowed_hosts: [a.example], env: { A: b } }',
      'mcp_servers.s.env: is for command (stdio) servers',
    ],
    [
      'an undeclared secret in env',
      '  s: { command: [node, s.js], env: { KEY: "${secret:NOPE}" } }',
      'mcp_servers.s.env.KEY: secret "NOPE" is not declared under secrets',
    ],
    [
      'an undeclared secret in headers',
      '  s: { url: "https://a.example/mcp", allowed_hosts: [a.example], headers: { A: "${secret:NOPE}" } }',
      'mcp_servers.s.headers.A: secret "NOPE"',
    ],
    ['a bad server name', '  Bad-Name: { command: [node] }', 'mcp_servers: name "Bad-Name" must match pattern'],
    ['a shell string for command', '  s: { command: "node s.js" }', 'mcp_servers.s.command: must be array'],
  ])('refuses %s', (_what, servers, message) => {
    expect(() => load(config(servers, '  {}'))).toThrow(message);
  });

  it('refuses an mcp tool on an undeclared server, or without a pin, or with a pin of another upstream tool', () => {
    expect(() => load(config(http, '  t_search: { kind: mcp, server: nope, tool: search, roles: [deployer] }', '{ T: { from: env, name: T } }'))).toThrow(
      'tools.t_search.server: server "nope" is not declared under mcp_servers',
    );
    expect(() => load(config(http, tool, '{ T: { from: env, name: T } }'))).toThrow('tools.t_search: is not pinned in mcp-lock.json: run npm run mcp:pin');
    pin({ t_search: { server: 'tracker', tool: 'other' } });
    expect(() => load(config(http, tool, '{ T: { from: env, name: T } }'))).toThrow('tools.t_search: mcp-lock.json pins tracker/other, not tracker/search');
  });

  it('refuses a lock whose hash does not match its definition, naming the lock file', () => {
    pin({ t_search: { server: 'tracker', tool: 'search', sha256: '0'.repeat(64) } });
    expect(() => load(config(http, tool, '{ T: { from: env, name: T } }'))).toThrow(
      `${mcpLockPath(file)}: tools.t_search: sha256 does not match the definition`,
    );
    writeFileSync(mcpLockPath(file), '{not json');
    expect(() => load(config(http, tool, '{ T: { from: env, name: T } }'))).toThrow(`${mcpLockPath(file)}: (file): not valid JSON`);
  });

  it('hashes a definition the same whatever the order of its keys', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } })).toBe('{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}');
    expect(definitionSha256({ inputSchema: { type: 'object' }, name: 'x' })).toBe(definitionSha256({ name: 'x', inputSchema: { type: 'object' } }));
  });
});
