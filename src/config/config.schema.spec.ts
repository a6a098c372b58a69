import Ajv from 'ajv';
import { gatewayConfigSchema } from './config.schema';
import { KIND_CONFIGS } from '../kinds';

// The loader compiles this schema without checking it against the meta-schema (start-up time): checked here instead.
describe('the schema of gateway.yaml', () => {
  it('is a valid JSON Schema with every kind registered', () => {
    const ajv = new Ajv({ useDefaults: true, discriminator: true });
    const schema = gatewayConfigSchema(KIND_CONFIGS);
    expect(ajv.validateSchema(schema)).toBe(true);
    expect(ajv.errors).toBeNull();
    expect(() => ajv.compile(schema)).not.toThrow();
  });

  it('would be caught by that check if it were not', () => {
    const ajv = new Ajv({ useDefaults: true, discriminator: true });
    const broken = { ...gatewayConfigSchema(KIND_CONFIGS), required: 'agents' };
    expect(ajv.validateSchema(broken)).toBe(false);
  });
});
