import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGatewayConfig } from '../../config/config.loader';
import { KIND_CONFIGS } from '..';
import { McpCatalog, uriDeclared } from './mcp-catalog';
import { catalogKey, definitionSha256, mcpLockPath, writeMcpLock } from './mcp-lock';
import { mcpServersOf } from './mcp-tool';

describe('uriDeclared: exact uris, and prefixes that cannot be climbed out of', () => {
  const uris = ['docs://guide.md', 'notes://team/*'];

  it.each(['docs://guide.md', 'notes://team/1', 'notes://team/a/b.txt'])('offers %s', (uri) => expect(uriDeclared(uris, uri)).toBe(true));

  it.each([
    'docs://guide.md.bak',
    'docs://GUIDE.md',
    'notes://team',
    'notes://teams/1',
    'notes://team/../secrets',
    'notes://team/./x',
    'notes://team/%2e%2e/secrets',
    'notes://team/a%2Fb',
    'notes://team/a\\b',
    'notes://team/a b',
    'notes://team/a\nb',
  ])('refuses %j', (uri) => expect(uriDeclared(uris, uri)).toBe(false));

  it('refuses a uri over 2048 characters', () => expect(uriDeclared(uris, `notes://team/${'a'.repeat(2048)}`)).toBe(false));
});

describe('mcp_servers.*.resources and .prompts in gateway.yaml', () => {
  let dir: string;
  let file: string;
  const load = (server: string) =>
    parseGatewayConfig(
      `
roles: { deployer: {}, reader: {} }
agents:
  - { id: a1, role: deployer, key: { alg: hmac-sha256, secret: "0123456789abcdef0123" } }
mcp_servers:
${server}
tools: {}
`,
      file,
      {},
      { kinds: KIND_CONFIGS },
    );
  const prompt = { name: 'summarise', description: 'Summarise a text', arguments: [{ name: 'text', required: true }] };
  const resource = { uri: 'docs://guide.md', name: 'guide', mimeType: 'text/markdown' };
  const pinCatalog = () =>
    writeMcpLock(mcpLockPath(file), {
      version: 1,
      tools: {},
      prompts: { [catalogKey('docs', 'summarise')]: { server: 'docs', sha256: definitionSha256(prompt), definition: prompt } },
      resources: { [catalogKey('docs', resource.uri)]: { server: 'docs', sha256: definitionSha256(resource), definition: resource } },
    });
  const server = (federated: string) => `  docs: { command: [node, server.js], ${federated} }`;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-catalog-'));
    file = join(dir, 'gateway.yaml');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('binds the pins: a role sees the pinned prompts and resources, another role nothing, and reads only what is declared', () => {
    pinCatalog();
    const config = load(
      server('resources: { roles: [deployer], uris: ["docs://guide.md", "docs://notes/*"] }, prompts: { roles: [deployer], names: [summarise] }'),
    );
    const catalog = new McpCatalog(mcpServersOf(config));
    expect(catalog.offers).toEqual({ resources: true, prompts: true });
    expect(catalog.resourcesFor('deployer')).toEqual([resource]);
    expect(catalog.promptsFor('deployer')).toEqual([prompt]);
    expect(catalog.resourcesFor('reader')).toEqual([]);
    expect(catalog.promptsFor('reader')).toEqual([]);
    expect(catalog.resourceServer('deployer', 'docs://notes/1')).toBe('docs');
    expect(catalog.resourceServer('deployer', 'docs://other.md')).toBeUndefined();
    expect(catalog.resourceServer('reader', 'docs://guide.md')).toBeUndefined();
    expect(catalog.promptServer('deployer', 'summarise')).toBe('docs');
    expect(catalog.promptServer('deployer', 'other')).toBeUndefined();
  });

  it('federates nothing unless declared', () => {
    const catalog = new McpCatalog(mcpServersOf(load(server('timeout_ms: 1000'))));
    expect(catalog.offers).toEqual({ resources: false, prompts: false });
    expect(catalog.resourceServer('deployer', 'docs://guide.md')).toBeUndefined();
  });

  it.each([
    [
      'a declared prompt without a pin',
      'prompts: { roles: [deployer], names: [summarise] }',
      /prompts\.names\[0\].*not pinned in mcp-lock\.json: run npm run mcp:pin/,
    ],
    ['an undeclared role', 'resources: { roles: [admin], uris: ["docs://guide.md"] }', /resources\.roles\[0\].*role "admin" is not declared/],
    ["a '*' inside a uri", 'resources: { roles: [deployer], uris: ["docs://*/x"] }', /may only end a uri/],
    ["a bare '*'", 'resources: { roles: [deployer], uris: ["*"] }', /would offer every uri/],
  ])('refuses %s', (_what, federated, message) => {
    expect(() => load(server(federated))).toThrow(message);
  });

  it('refuses a prompt name offered by two servers', () => {
    pinCatalog();
    const two = `${server('prompts: { roles: [deployer], names: [summarise] }')}\n  other: { command: [node, other.js], prompts: { roles: [deployer], names: [summarise] } }`;
    expect(() => load(two)).toThrow(/also offered by mcp_servers\.docs/);
  });
});
