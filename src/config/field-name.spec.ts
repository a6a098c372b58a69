import { parseGatewayConfig } from './config.loader';
import { KIND_CONFIGS } from '../kinds';
import { normalizeFieldName } from './gateway-config';

describe('normalizeFieldName: one spelling for a key, whatever it looks like', () => {
  it.each([
    ['password', 'password'],
    ['Pass_Word', 'password'],
    ['p\u0430ssword (Cyrillic а)', 'password'],
    ['\uff30\uff21\uff33\uff33\uff37\uff2f\uff32\uff24 (fullwidth)', 'password'],
    ['pass.word', 'password'],
    ['pass\tword', 'password'],
    ['pass\u200bword (zero-width space)', 'password'],
    ['passw0rd (zero for o)', 'password'],
    ['pássword (accent)', 'password'],
    ['pa\u0301ssword (combining accent)', 'password'],
    ['API_KEY', 'apikey'],
    ['x-api-key', 'xapikey'],
    ['\u0455ession id (Cyrillic ѕ)', 'sessionid'],
  ])('%s → %s', (key, expected) => {
    expect(normalizeFieldName(key.replace(/ \(.*\)$/, ''))).toBe(expected);
  });

  it('is stable: a normalised name normalises to itself', () => {
    for (const key of ['password', 'apikey', 'webhookurl', 'command', 'ｓession.id', 'Ünïcödé-Schlüssel', '鍵_名']) {
      expect(normalizeFieldName(normalizeFieldName(key))).toBe(normalizeFieldName(key));
    }
  });

  it('keeps letters of other scripts (a key is not forbidden just for not being Latin)', () => {
    expect(normalizeFieldName('鍵_名')).toBe('鍵名');
    expect(normalizeFieldName('ключ')).not.toBe('');
  });
});

describe('forbidden_fields in the config', () => {
  const config = (settings: string, tool = '') =>
    `settings: { ${settings} }\nroles: { r: {} }\nagents: []\ntools:\n  t: { kind: fs.read, roles: [r], input_schema: { type: object }${tool} }\n`;

  it('are normalised at load as argument keys are', () => {
    const loaded = parseGatewayConfig(
      config('forbidden_fields: ["Pass.Word"]', ', forbidden_fields: ["ｓession-id"]'),
      'gateway.yaml',
      {},
      { kinds: KIND_CONFIGS },
    );
    expect([...loaded.tools.get('t')!.forbidden_fields].sort()).toEqual(['password', 'sessionid']);
  });

  it('refuse a name with no letter or digit, which would match junk keys', () => {
    expect(() => parseGatewayConfig(config('forbidden_fields: ["__"]'), 'gateway.yaml', {}, { kinds: KIND_CONFIGS })).toThrow(
      'gateway.yaml: settings.forbidden_fields[0]: "__" has no letter or digit',
    );
    expect(() => parseGatewayConfig(config('', ', forbidden_fields: [ok, "-."]'), 'gateway.yaml', {}, { kinds: KIND_CONFIGS })).toThrow(
      'gateway.yaml: tools.t.forbidden_fields[1]: "-." has no letter or digit',
    );
  });
});
