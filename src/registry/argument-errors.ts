import type { ErrorObject, ValidateFunction } from 'ajv';
import { countEntries } from '../core/json-walk';
import type { Tool } from '../config/gateway-config';

// Tools validate with ajv stopping at the first error (cheap, whatever the input). Every error is
// listed only for arguments small enough that listing them cannot cost much, with the tool's own
// schema compiled the same way again (the first time its arguments fail) but listing every error.
const LIST_ALL_UP_TO_ENTRIES = 1000;
/** By the tool's compile function (a re-pinned mcp tool gets a new one); null: it could not be compiled, so the first error is all there is to say. */
const listAll = new WeakMap<Tool['compileListingAllErrors'], ValidateFunction | null>();

/** The `details` of a 400 invalid_arguments, for arguments `tool.validateArguments` has just refused. */
export function argumentErrors(tool: Tool, args: unknown): unknown[] {
  let errors: ErrorObject[] = tool.validateArguments.errors ?? [];
  if (countEntries(args, LIST_ALL_UP_TO_ENTRIES) <= LIST_ALL_UP_TO_ENTRIES) {
    const validate = listingAllErrors(tool);
    if (validate && !validate(args)) errors = validate.errors!;
  }
  return errors.map(({ instancePath, keyword, message, params }) => ({ instancePath, keyword, message, params }));
}

function listingAllErrors(tool: Tool): ValidateFunction | null {
  let validate = listAll.get(tool.compileListingAllErrors);
  if (validate === undefined) {
    try {
      validate = tool.compileListingAllErrors();
    } catch {
      // The same schema compiled the same way at load; should it fail now, a refusal still answers 400.
      validate = null;
    }
    listAll.set(tool.compileListingAllErrors, validate);
  }
  return validate;
}
