import { createHash } from 'node:crypto';
import { KIND_CONFIGS } from '../kinds';
import { ConfigSwaps, describeChanges, keepRestartBound } from './config-reload';
import { loadGatewayConfig, parseGatewayConfig } from './config.loader';
import type { GatewayConfig } from './gateway-config';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const schema = '{ type: object, properties: { path: { type: string } } }';

function config(parts: { agents?: string; tools?: string; settings?: string; secrets?: string } = {}): GatewayConfig {
  const yaml = `
settings: { max_body_bytes: ${parts.settings ?? '65536'} }
roles: { reader: {}, writer: {} }
agents:
  - { id: a1, role: reader, key: { alg: hmac-sha256, secret: "a1-key-0123456789" }, mcp_tokens: [{ token_sha256: "${sha('t1')}" }] }
${parts.agents ?? ''}
approvers:
  - { id: admin, token_sha256: "${sha('admin')}" }
tools:
  read_file: { kind: fs.read, roles: [reader], input_schema: ${schema} }
${parts.tools ?? `  list_dir: { kind: fs.list, roles: [reader], input_schema: ${schema} }`}
secrets: ${parts.secrets ?? '{}'}
`;
  return parseGatewayConfig(yaml, 'gateway.yaml', {}, { kinds: KIND_CONFIGS });
}

describe('describeChanges', () => {
  it('names agents, tools, settings, secrets and token fingerprints, never a key or a token', () => {
    const before = config();
    const after = config({
      agents: `  - { id: a2, role: writer, key: { alg: hmac-sha256, secret: "a2-key-0123456789" }, mcp_tokens: [{ token_sha256: "${sha('t2')}" }] }`,
      tools: `  read_all: { kind: fs.read, roles: [reader, writer], input_schema: ${schema} }`,
      settings: '131072',
      secrets: '{ API_KEY: { from: env, name: API_KEY } }',
    });
    const changes = describeChanges(before, after, ['API_KEY']);
    expect(changes).toEqual({
      agents: { added: ['a2'] },
      tools: { added: ['read_all'], removed: ['list_dir'] },
      settings: { changed: ['max_body_bytes'] },
      secrets: { added: ['API_KEY'], changed: ['API_KEY'] },
      tokens: { added: [`a2/${sha('t2').slice(0, 8)}`] },
    });
    expect(JSON.stringify(changes)).not.toContain('a2-key');
  });

  it('finds nothing between two loads of the same file, and a changed role or key', () => {
    expect(describeChanges(config(), config())).toEqual({});
    const roles = config({ tools: `  list_dir: { kind: fs.list, roles: [writer], input_schema: ${schema} }` });
    expect(describeChanges(config(), roles)).toEqual({ tools: { changed: ['list_dir'] } });
  });

  it('finds nothing, and nothing waiting for a restart, when the example config (mcp tools, pins) is loaded again', () => {
    const load = () => loadGatewayConfig({ GATEWAY_CONFIG: 'policies/gateway.yaml' }, { kinds: KIND_CONFIGS });
    const live = load();
    const { next, restartRequired } = keepRestartBound(live, load());
    expect(restartRequired).toEqual([]);
    expect(describeChanges(live, next)).toEqual({});
  });

  it('keeps a long list short: the first 200 names, then how many more', () => {
    const many = Array.from({ length: 250 }, (_, i) => `  t${String(i).padStart(3, '0')}: { kind: fs.read, roles: [reader], input_schema: ${schema} }`).join(
      '\n',
    );
    const added = describeChanges(config(), config({ tools: many })).tools.added!;
    expect(added).toHaveLength(201);
    expect(added[200]).toBe('+50 more');
  });
});

describe('keepRestartBound', () => {
  it('keeps what the running process set up at start, and says so', () => {
    const live = config();
    const { next, restartRequired } = keepRestartBound(live, config({ settings: '2048' }));
    expect(restartRequired).toEqual(['settings.max_body_bytes']);
    expect(next.settings.max_body_bytes).toBe(65536);
    expect(next.paths).toBe(live.paths);
  });
});

describe('ConfigSwaps', () => {
  it('swaps every field and every participant in one step; a participant that cannot prepare changes nothing', () => {
    const live = config();
    const swaps = new ConfigSwaps(live);
    const seen: string[] = [];
    swaps.follow((next) => {
      const tools = [...next.tools.keys()].join(',');
      return () => seen.push(tools);
    });
    const next = config({ tools: '' });
    const swap = swaps.prepare(next);
    expect(live.tools.has('list_dir')).toBe(true);
    swap();
    expect(live.tools.has('list_dir')).toBe(false);
    expect(live.tools).toBe(next.tools);
    expect(seen).toEqual(['read_file']);

    swaps.follow(() => {
      throw new Error('cannot');
    });
    expect(() => swaps.prepare(config())).toThrow('cannot');
    expect(live.tools.has('list_dir')).toBe(false);
    expect(seen).toEqual(['read_file']);
  });

  it('leaves the configuration read-only', () => {
    const live = config();
    expect(() => Object.assign(live, { tools: new Map() })).toThrow(TypeError);
  });
});
