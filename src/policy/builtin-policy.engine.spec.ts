import { parseGatewayConfig } from '../config/config.loader';
import { KIND_CONFIGS } from '../kinds';
import { BuiltinPolicyEngine, versionMatches } from './builtin-policy.engine';

const yaml = `
settings: { forbidden_fields: [password, api_key, token] }
roles: { dev: {}, ops: {} }
agents:
  - { id: a1, role: dev, key: { alg: hmac-sha256, secret: "0123456789abcdef" } }
  - { id: a2, role: ops, key: { alg: hmac-sha256, secret: "0123456789abcdef" }, versions: ["1.x", "2.0.0"] }
tools:
  t: { kind: fs.read, roles: [dev, ops], forbidden_fields: [webhook_url], input_schema: { type: object } }
  w: { kind: fs.write, roles: [ops], input_schema: { type: object } }
`;
const engine = new BuiltinPolicyEngine(parseGatewayConfig(yaml, 'spec.yaml', {}, { kinds: KIND_CONFIGS }));
const decide = (tool: string, args: Record<string, unknown>, agent = { id: 'a1', role: 'dev', version: '1.0.0' }) =>
  engine.decide({ agent, tool, arguments: args });

describe('BuiltinPolicyEngine', () => {
  describe('forbidden fields at any depth', () => {
    it.each([
      [{ password: 'x' }, 'arguments.password'],
      [{ PassWord: 'x' }, 'arguments.PassWord'],
      [{ 'API-KEY': 'x' }, 'arguments.API-KEY'],
      [{ a_p_i_k_e_y: 'x' }, 'arguments.a_p_i_k_e_y'],
      [{ nested: { deeper: { Token: 1 } } }, 'arguments.nested.deeper.Token'],
      [{ list: [1, { ok: 1 }, { token: 1 }] }, 'arguments.list[2].token'],
      [{ list: [[[{ 'webhook-URL': 'x' }]]] }, 'arguments.list[0][0][0].webhook-URL'],
    ])('denies %j', async (args, path) => {
      await expect(decide('t', args)).resolves.toEqual({ allow: false, requires_approval: false, reason_code: 'forbidden_field', details: [{ path }] });
    });

    it.each([[{ tokens: 1 }], [{ my_password_hint: 'x' }], [{ note: 'my password is hunter2' }], [{ list: ['token', 'api_key'] }], [{ token_count: 5 }]])(
      'allows the near miss %j (values and longer keys are not field names)',
      async (args) => {
        await expect(decide('t', args)).resolves.toMatchObject({ allow: true });
      },
    );

    it('applies a tool own list only to that tool', async () => {
      await expect(decide('t', { webhook_url: 'x' })).resolves.toMatchObject({ reason_code: 'forbidden_field' });
      await expect(decide('w', { webhook_url: 'x' }, { id: 'a2', role: 'ops', version: '2.0.0' })).resolves.toMatchObject({ allow: true });
    });
  });

  it('denies an unregistered tool, matching names exactly', async () => {
    await expect(decide('T', {})).resolves.toMatchObject({ allow: false, reason_code: 'tool_not_registered' });
    await expect(decide('nope', {})).resolves.toMatchObject({ allow: false, reason_code: 'tool_not_registered' });
  });

  it('denies a tool outside the role', async () => {
    await expect(decide('w', {})).resolves.toMatchObject({ allow: false, reason_code: 'tool_not_allowed_for_role' });
  });

  it('checks versions before the role', async () => {
    await expect(decide('w', {}, { id: 'a2', role: 'ops', version: '3.0.0' })).resolves.toMatchObject({ reason_code: 'agent_version_not_allowed' });
  });

  it('marks tools that change the workspace as needing approval by default', async () => {
    await expect(decide('w', {}, { id: 'a2', role: 'ops', version: '1.4.2' })).resolves.toEqual({
      allow: true,
      requires_approval: true,
      reason_code: 'allowed',
    });
    await expect(decide('t', {})).resolves.toEqual({ allow: true, requires_approval: false, reason_code: 'allowed' });
  });

  it.each([
    ['1.x', '1.0.0', true],
    ['1.x', '1.99', true],
    ['1.x', '1', false],
    ['1.x', '2.0.0', false],
    ['1.x', '10.0.0', false],
    ['1.2.*', '1.2.9', true],
    ['1.2.*', '1.3.0', false],
    ['2.0.0', '2.0.0', true],
    ['2.0.0', '2.0.0.1', false],
    ['2.0.0', '2.0', false],
  ])('version pattern %s against %s: %s', (pattern, version, expected) => {
    expect(versionMatches(pattern, version)).toBe(expected);
  });
});
