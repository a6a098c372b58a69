import { PipeTransform } from '@nestjs/common';
import Ajv, { type ValidateFunction } from 'ajv';
import { GatewayError, InvalidRequest } from './errors';

// The first error is enough to refuse a body; collecting all of them costs time an attacker chooses.
// These schemas are the gateway's own (tests send each of them bodies): not checked against the
// meta-schema again at every start-up, and compiled on first use, not while the application starts.
const ajv = new Ajv({ allErrors: false, strict: true, validateSchema: false });

/** A validator of `schema`, compiled on first use; the result returns a valid value or throws 400 invalid_request with ajv's errors. */
export function bodyValidator<T>(schema: object, reasonCode: string, message: string): (value: unknown) => T {
  return schemaValidator<T>(schema, (details) => new InvalidRequest(reasonCode, message, details));
}

/** The same, throwing the error `refusal` makes of ajv's errors. */
export function schemaValidator<T>(schema: object, refusal: (details: unknown[]) => GatewayError): (value: unknown) => T {
  let validate: ValidateFunction<T> | undefined;
  return (value) => {
    validate ??= ajv.compile<T>(schema);
    if (validate(value)) return value;
    throw refusal(validate.errors!.map(({ instancePath, message, params }) => ({ instancePath, message, params })));
  };
}

/** A request body checked against a JSON Schema. */
export class JsonSchemaPipe<T> implements PipeTransform<unknown, T> {
  readonly transform: (value: unknown) => T;

  constructor(schema: object) {
    this.transform = bodyValidator<T>(schema, 'invalid_request', 'Body does not match the expected shape');
  }
}
