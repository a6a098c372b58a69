import { parseGatewayConfig } from '../config/config.loader';
import { KIND_CONFIGS } from '../kinds';
import { SecretStore } from './secret-store';

describe('SecretStore known values', () => {
  it("keeps every HMAC agent's key for scrubbing, however many agents there are", () => {
    const agents = Array.from({ length: 1500 }, (_, i) => `  - { id: agent_${i}, role: r, key: { alg: hmac-sha256, secret: "agent-${i}-key-0123456789" } }`);
    const yaml = `roles: { r: {} }\nagents:\n${agents.join('\n')}\ntools: {}\n`;
    const store = new SecretStore(parseGatewayConfig(yaml, 'gateway.yaml', {}, { kinds: KIND_CONFIGS }));
    const text = 'first agent-0-key-0123456789, last agent-1499-key-0123456789.';
    expect(store.matcher().replaceIn(text, () => '#')).toBe('first #, last #.');
  });
});
