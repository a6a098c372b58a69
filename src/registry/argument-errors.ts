import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { countEntries } from '../common/json-walk';
import type { Tool } from '../config/gateway-config';

// Tools validate with ajv stopping at the first error (cheap, whatever the input). Every error is
// listed only for arguments small enough that listing them cannot cost much; the same schemas,
// compiled again with allErrors the first time a tool's arguments fail.
const LIST_ALL_UP_TO_ENTRIES = 1000;
const allErrorsAjv = new Ajv({ strict: true, allErrors: true });
addFormats(allErrorsAjv);
const listAll = new WeakMap<Tool, ValidateFunction>();

/** The `details` of a 400 invalid_arguments, for arguments `tool.validateArguments` has just refused. */
export function argumentErrors(tool: Tool, args: unknown): unknown[] {
  let errors: ErrorObject[] = tool.validateArguments.errors ?? [];
  if (countEntries(args, LIST_ALL_UP_TO_ENTRIES) <= LIST_ALL_UP_TO_ENTRIES) {
    let validate = listAll.get(tool);
    if (!validate) listAll.set(tool, (validate = allErrorsAjv.compile(tool.input_schema)));
    if (!validate(args)) errors = validate.errors!;
  }
  return errors.map(({ instancePath, keyword, message, params }) => ({ instancePath, keyword, message, params }));
}
