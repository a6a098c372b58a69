import { ConfigError, parseGatewayConfig } from './config.loader';
import { KIND_CONFIGS } from '../kinds';

// A large config loads correctly: its tools' input_schemas are each checked in strict mode at load
// (a bad one is a config error naming its tool), tools with the same schema share one compiled
// validator, and YAML's duplicate keys are still refused. How fast it loads is measured by
// `npm run bench:startup`, not here.
const shared = '{ type: object, required: [path], additionalProperties: false, properties: { path: { type: string, minLength: 1, maxLength: 4096 } } }';

function configWith(tools: string[]): string {
  return [
    'roles: { reader: {} }',
    'agents:',
    '  - { id: scale_agent, role: reader, key: { alg: hmac-sha256, secret: "scale-test-secret-0123456789" } }',
    'tools:',
    ...tools,
    '',
  ].join('\n');
}

const manyTools = (count: number, schemaOf: (i: number) => string = () => shared) =>
  Array.from({ length: count }, (_, i) => `  tool_${i}: { kind: fs.read, roles: [reader], input_schema: ${schemaOf(i)} }`);

const parse = (text: string) => parseGatewayConfig(text, 'scale.yaml', {}, { kinds: KIND_CONFIGS });

function problemOf(text: string): string {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return 'no error';
}

describe('a config with many tools', () => {
  it('loads 10,000 tools sharing one input_schema, each validating its arguments', () => {
    const config = parse(configWith(manyTools(10_000)));
    expect(config.tools.size).toBe(10_000);
    const first = config.tools.get('tool_0')!;
    const last = config.tools.get('tool_9999')!;
    expect(last.name).toBe('tool_9999');
    expect(last.kind).toBe('fs.read');
    expect(last.roles).toEqual(['reader']);
    for (const tool of [first, last]) {
      expect(tool.validateArguments({ path: '/workspace/a.txt' })).toBe(true);
      expect(tool.validateArguments({ path: '' })).toBe(false);
      expect(tool.validateArguments.errors?.[0]).toMatchObject({ instancePath: '/path', keyword: 'minLength' });
      expect(tool.validateArguments({ path: 'a', extra: 1 })).toBe(false);
      expect(tool.validateArguments.errors?.[0]).toMatchObject({ keyword: 'additionalProperties' });
      const listing = tool.compileListingAllErrors();
      expect(listing({ extra: 1 })).toBe(false);
      expect(listing.errors?.map((e) => e.keyword).sort()).toEqual(['additionalProperties', 'required']);
    }
    expect(last.validateArguments).toBe(first.validateArguments);
    expect(last.compileListingAllErrors()).toBe(first.compileListingAllErrors());
  }, 60_000);

  it('gives tools with different input_schemas their own validators', () => {
    const other = '{ type: object, required: [name], additionalProperties: false, properties: { name: { type: string } } }';
    const config = parse(configWith(manyTools(4, (i) => (i % 2 === 0 ? shared : other))));
    const [a, b, c] = ['tool_0', 'tool_1', 'tool_2'].map((name) => config.tools.get(name)!);
    expect(a.validateArguments).toBe(c.validateArguments);
    expect(b.validateArguments).not.toBe(a.validateArguments);
    expect(a.validateArguments({ path: 'x' })).toBe(true);
    expect(b.validateArguments({ path: 'x' })).toBe(false);
    expect(b.validateArguments({ name: 'x' })).toBe(true);
  });

  it.each([
    ['an unknown keyword', '{ type: object, properties: { path: { typ: string } } }', 'scale.yaml: tools.tool_500.input_schema: unknown keyword "typ"'],
    [
      'a keyword of the wrong type (strict mode)',
      '{ type: object, properties: { path: { type: string, minimum: 1 } } }',
      expect.stringMatching(/^scale\.yaml: tools\.tool_500\.input_schema: /),
    ],
    [
      'an invalid schema (meta-schema)',
      '{ type: object, required: path }',
      expect.stringMatching(/^scale\.yaml: tools\.tool_500\.input_schema: .*must be array/),
    ],
  ])('refuses %s at load among 1,000 good schemas, naming the tool', (_label, bad, message) => {
    expect(problemOf(configWith(manyTools(1000, (i) => (i === 500 ? bad : shared))))).toEqual(message);
  });

  it('names the first tool of several with the same bad schema', () => {
    const bad = '{ type: object, properties: { path: { typ: string } } }';
    expect(problemOf(configWith(manyTools(20, (i) => (i >= 7 ? bad : shared))))).toBe('scale.yaml: tools.tool_7.input_schema: unknown keyword "typ"');
  });

  it('refuses a tool name given twice, with its line', () => {
    const tools = manyTools(1000);
    tools.push(tools[123].replace('tool_123', 'tool_42'));
    expect(problemOf(configWith(tools))).toBe(`scale.yaml: line ${4 + 1001}: duplicate key "tool_42" (column 3)`);
  });

  it('refuses a duplicate key inside a tool entry, as before', () => {
    const tools = [`  tool_0: { kind: fs.read, roles: [reader], input_schema: ${shared}, kind: fs.list }`];
    expect(problemOf(configWith(tools))).toMatch(/^scale\.yaml: line 5: duplicate key "kind" \(column \d+\)$/);
  });

  it('expands ${env:…} anywhere among 1,000 tools and names the path of one that is not set', () => {
    const tools = manyTools(1000);
    tools[700] = `  tool_700: { kind: fs.read, roles: [reader], description: "\${env:SCALE_DESCRIPTION}", input_schema: ${shared} }`;
    const env = { SCALE_DESCRIPTION: 'from the environment' };
    expect(parseGatewayConfig(configWith(tools), 'scale.yaml', env, { kinds: KIND_CONFIGS }).tools.get('tool_700')!.description).toBe('from the environment');
    expect(problemOf(configWith(tools))).toBe('scale.yaml: tools.tool_700.description: environment variable SCALE_DESCRIPTION is not set');
    tools[700] = `  tool_700: { kind: fs.read, roles: ["\${env:SCALE_ROLE}"], input_schema: ${shared} }`;
    expect(problemOf(configWith(tools))).toBe('scale.yaml: tools.tool_700.roles[0]: environment variable SCALE_ROLE is not set');
  });

  it('keeps a __proto__ key a key (refused as unknown), never a prototype', () => {
    const text = configWith(manyTools(3)).replace('roles: { reader: {} }', 'settings: { __proto__: { audit_fsync: true } }\nroles: { reader: {} }');
    expect(problemOf(text)).toBe('scale.yaml: settings: unknown field "__proto__"');
  });
});
