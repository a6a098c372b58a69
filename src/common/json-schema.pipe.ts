import { PipeTransform } from '@nestjs/common';
import Ajv from 'ajv';
import { InvalidRequest } from './errors';

// The first error is enough to refuse a body; collecting all of them costs time an attacker chooses.
const ajv = new Ajv({ allErrors: false, strict: true });

/** Compiles `schema` once; the result returns a valid value or throws 400 invalid_request with ajv's errors. */
export function bodyValidator<T>(schema: object, reasonCode: string, message: string): (value: unknown) => T {
  const validate = ajv.compile<T>(schema);
  return (value) => {
    if (validate(value)) return value;
    const details = validate.errors!.map(({ instancePath, message, params }) => ({ instancePath, message, params }));
    throw new InvalidRequest(reasonCode, message, details);
  };
}

/** A request body checked against a JSON Schema. */
export class JsonSchemaPipe<T> implements PipeTransform<unknown, T> {
  readonly transform: (value: unknown) => T;

  constructor(schema: object) {
    this.transform = bodyValidator<T>(schema, 'invalid_request', 'Body does not match the expected shape');
  }
}
