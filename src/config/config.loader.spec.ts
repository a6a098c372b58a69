import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadGatewayConfig, parseGatewayConfig } from './config.loader';
import { KIND_CONFIGS } from '../kinds';

const demoFile = join(__dirname, '../../policies/gateway.yaml');
const demo = readFileSync(demoFile, 'utf8');
const parse = (text: string, env: Record<string, string> = {}) => parseGatewayConfig(text, 'policies/gateway.yaml', env, { kinds: KIND_CONFIGS });
const problemOf = (text: string, env: Record<string, string> = {}) => {
  try {
    parse(text, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return 'no error';
};

describe('gateway.yaml loading', () => {
  it('loads the shipped demo config with its dev defaults, and reports them', () => {
    const config = loadGatewayConfig({ GATEWAY_CONFIG: demoFile, GATEWAY_WORKSPACE: '/tmp/ws' }, { kinds: KIND_CONFIGS });
    expect([...config.tools.keys()].sort()).toEqual(['delete_file', 'demo_word_count', 'gateway_health', 'list_dir', 'read_file', 'write_file']);
    expect([...config.agents.keys()]).toEqual(['agent_deploy_001', 'agent_reader_001']);
    expect(config.approvers.map((a) => a.id)).toEqual(['admin']);
    expect(config.paths.workspace).toBe('/tmp/ws');
    expect(config.demoCredentials).toEqual([
      'agents[0].key.secret (AGENT_DEPLOY_001_KEY)',
      'agents[0].mcp_tokens[0].token_sha256 (AGENT_DEPLOY_001_MCP_TOKEN_SHA256)',
      'agents[1].key.public_key (AGENT_READER_001_PUBLIC_KEY)',
      'agents[1].mcp_tokens[0].token_sha256 (AGENT_READER_001_MCP_TOKEN_SHA256)',
      'approvers[0].token_sha256 (ADMIN_TOKEN_SHA256)',
    ]);
  });

  it('takes ${env:…} values from the environment when set', () => {
    const config = parse(demo, { AGENT_DEPLOY_001_KEY: 'from-the-environment-123' });
    const key = config.agents.get('agent_deploy_001')!.key;
    expect(key.alg === 'hmac-sha256' && key.secret.toString()).toBe('from-the-environment-123');
    expect(config.demoCredentials).not.toContain('agents[0].key.secret (AGENT_DEPLOY_001_KEY)');
  });

  it('fills defaults from the schema', () => {
    const config = parse(demo.replace(/\n +timeout_ms: 5000/, ''));
    expect(config.tools.get('read_file')!.timeout_ms).toBe(10000);
    expect(config.settings.max_pending_approvals_per_agent).toBe(20);
  });

  it.each([
    [
      'an unknown schema keyword',
      demo.replace(
        'path: { type: string, minLength: 1, maxLength: 4096, description: "File',
        'path: { typ: string, minLength: 1, maxLength: 4096, description: "File',
      ),
      'policies/gateway.yaml: tools.read_file.input_schema: unknown keyword "typ"',
    ],
    ['an unknown tool kind', demo.replace('kind: fs.read', 'kind: fs.reed'), 'policies/gateway.yaml: tools.read_file: unsupported kind "fs.reed"'],
    ['an undeclared role', demo.replace('role: reader', 'role: readr'), 'policies/gateway.yaml: agents[1].role: role "readr" is not declared under roles'],
    ['a wrong type', demo.replace('timeout_ms: 5000', 'timeout_ms: fast'), 'policies/gateway.yaml: tools.read_file.timeout_ms: must be integer'],
    [
      'an unknown setting',
      demo.replace('max_body_bytes: 1048576', 'max_body_bytes: 1048576\n  colour: red'),
      'policies/gateway.yaml: settings: unknown field "colour"',
    ],
    [
      'a missing environment variable',
      demo.replace('${env:AGENT_DEPLOY_001_KEY:-dev-only-deploy-key-0001}', '${env:NOT_SET_ANYWHERE}'),
      'policies/gateway.yaml: agents[0].key.secret: environment variable NOT_SET_ANYWHERE is not set',
    ],
    [
      'a bad public key',
      demo.replace(/public_key: "[^"]+"/, 'public_key: "AAAA"'),
      'policies/gateway.yaml: agents[1].key.public_key: not a valid SPKI public key (PEM or base64 DER)',
    ],
    [
      'a non-object input schema',
      demo.replace(
        'type: object\n      required: [path]\n      additionalProperties: false\n      properties:\n        path: { type: string, minLength: 1, maxLength: 4096, description: "File',
        'type: string\n      required: [path]\n      additionalProperties: false\n      properties:\n        path: { type: string, minLength: 1, maxLength: 4096, description: "File',
      ),
      'policies/gateway.yaml: tools.read_file.input_schema: must have type: object',
    ],
    [
      'an approver limited to an unknown tool',
      demo.replace('approvers:\n  - id: admin', 'approvers:\n  - id: admin\n    tools: [launch_rockets]'),
      'policies/gateway.yaml: approvers[0].tools[0]: tool "launch_rockets" is not declared under tools',
    ],
    [
      'an idempotency TTL shorter than twice the signature tolerance',
      demo.replace('idempotency_ttl_s: 86400', 'idempotency_ttl_s: 500'),
      'policies/gateway.yaml: settings.idempotency_ttl_s: must be at least twice signature_tolerance_s (600)',
    ],
    [
      'an undeclared secret in an http tool',
      demo.replace('${secret:DEMO_UPSTREAM_KEY}', '${secret:NOPE}'),
      'policies/gateway.yaml: tools.gateway_health.request.headers.X-Demo-Key: secret "NOPE" is not declared under secrets',
    ],
    [
      'a URL placeholder that is not an argument',
      demo.replace('/{probe}"', '/{probe}/{id}"'),
      'policies/gateway.yaml: tools.gateway_health.request.url: placeholder {id} is not a property of input_schema',
    ],
    [
      'an http tool without allowed_hosts',
      demo.replace('    allowed_hosts: [127.0.0.1]\n', ''),
      'policies/gateway.yaml: tools.gateway_health: missing required field "allowed_hosts"',
    ],
    [
      'a tool name MCP clients refuse (a dot)',
      demo.replace('  read_file:\n', '  read.file:\n'),
      'policies/gateway.yaml: tools: name "read.file" must match pattern "^[A-Za-z0-9_-]{1,64}$"',
    ],
    [
      'a tool named like the built-in approval_status',
      demo.replace('  read_file:\n', '  approval_status:\n'),
      'policies/gateway.yaml: tools: name "approval_status" is reserved',
    ],
    [
      'an MCP token without agent_version for an agent with versions',
      demo.replace(/(AGENT_READER_001_MCP_TOKEN_SHA256:-[0-9a-f]+}"), agent_version: "1.0.0"/, '$1'),
      'policies/gateway.yaml: agents[1].mcp_tokens[0].agent_version: is required when the agent has versions',
    ],
    [
      'an MCP token with a bad expiry',
      demo.replace(
        'agent_version: "1.0.0" }\n  - id: agent_reader_001',
        'agent_version: "1.0.0", expires_at: "2027-13-45T00:00:00Z" }\n  - id: agent_reader_001',
      ),
      'policies/gateway.yaml: agents[0].mcp_tokens[0].expires_at: is not a date-time',
    ],
    [
      'broken YAML',
      demo.replace('roles: [deployer]\n    requires', 'roles: [deployer\n    requires'),
      expect.stringMatching(/^policies\/gateway\.yaml: line \d+: /),
    ],
  ])('names the file, the path and the problem for %s', (_name, text, message) => {
    expect(problemOf(text)).toEqual(message);
  });

  it('reports a missing file', () => {
    expect(() => loadGatewayConfig({ GATEWAY_CONFIG: '/nonexistent/gateway.yaml' }, { kinds: KIND_CONFIGS })).toThrow(
      '/nonexistent/gateway.yaml: (file): cannot be read (ENOENT)',
    );
  });

  describe('oauth:', () => {
    const withOAuth = (issuers: string, clients: string) =>
      `${demo.replace('  - id: agent_deploy_001\n', `  - id: agent_deploy_001\n    oauth_clients: [${clients}]\n`)}\noauth:\n  resource: "https://gw.example/mcp"\n  issuers:\n${issuers}`;
    const issuer = (url: string, host: string) => `    - { issuer: "${url}", allowed_hosts: ["${host}"] }\n`;

    it('binds a bare client id to the one issuer, and wants the issuer named beside several', () => {
      expect(problemOf(withOAuth(issuer('https://a.example', 'a.example'), '"bot"'))).toBe('no error');
      const two = issuer('https://a.example', 'a.example') + issuer('https://b.example', 'b.example');
      expect(problemOf(withOAuth(two, '"bot"'))).toMatch(/oauth_clients\[0\].*name the issuer/);
      expect(problemOf(withOAuth(two, '"https://b.example#bot"'))).toBe('no error');
    });

    it('fetches an issuer over https only, plain http on a loopback address', () => {
      expect(problemOf(withOAuth(issuer('http://idp.example', 'idp.example'), '"bot"'))).toMatch(/must be https/);
      expect(problemOf(withOAuth(issuer('http://127.0.0.1:9000', '127.0.0.1'), '"bot"'))).toBe('no error');
    });
  });
});
