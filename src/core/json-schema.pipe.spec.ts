import Ajv from 'ajv';
import { InvalidRequest } from './errors';
import { bodyValidator } from './json-schema.pipe';
import { envelopeSchema } from '../edge/envelope.guard';
import { approvalDecisionSchema } from '../approval/approval.dto';

describe('body validators', () => {
  it('compile on first use and refuse a bad body with 400 and the reason code', () => {
    const validate = bodyValidator<{ n: number }>({ type: 'object', required: ['n'], properties: { n: { type: 'integer' } } }, 'bad_body', 'Bad body');
    expect(validate({ n: 1 })).toEqual({ n: 1 });
    let refusal: unknown;
    try {
      validate({ n: 'x' });
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(InvalidRequest);
    expect(refusal).toMatchObject({ httpStatus: 400, reasonCode: 'bad_body', details: [{ instancePath: '/n', message: 'must be integer' }] });
  });

  it('keep strict mode: a schema with an unknown keyword throws (at first use)', () => {
    const validate = bodyValidator({ type: 'object', properties: { n: { typ: 'integer' } } }, 'bad_body', 'Bad body');
    expect(() => validate({})).toThrow(/strict mode: unknown keyword: "typ"/);
  });

  // Not checked against the meta-schema at start-up: checked here.
  it.each([
    ['the tool-call envelope', envelopeSchema],
    ['an approval decision', approvalDecisionSchema],
  ])('the schema of %s is a valid JSON Schema', (_name, schema) => {
    const ajv = new Ajv({ strict: true });
    expect(ajv.validateSchema(schema)).toBe(true);
    expect(() => ajv.compile(schema)).not.toThrow();
  });
});
