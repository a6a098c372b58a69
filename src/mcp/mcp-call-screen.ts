import { isJSONRPCRequest } from '@modelcontextprotocol/server';
import { GatewayError, InvalidRequest } from '../core/errors';
import { exceedsDepth, MAX_ARGUMENT_DEPTH } from '../core/json-walk';

/**
 * How deep one JSON-RPC message may nest. Deeper than MAX_ARGUMENT_DEPTH so that arguments nested
 * a little too deep still reach the pipeline (and get its `arguments_too_deep` answer), and far
 * below the depth at which the MCP SDK's own validation runs out of stack (a 500 before this screen).
 */
export const MAX_MESSAGE_DEPTH = 2 * MAX_ARGUMENT_DEPTH;

export const JSONRPC_INVALID_REQUEST = -32600;
export const JSONRPC_INVALID_PARAMS = -32602;

/** The reason of a well-formed message refused with the rest of its batch. */
export const BATCH_REFUSED = 'batch_refused';

export type JsonRpcId = string | number | null;

/** One message of a body the door refuses: its id (to answer it), whether it is a tool call (to record it), and why. */
export interface ScreenedMessage {
  id: JsonRpcId;
  toolCall: boolean;
  rpcCode: number;
  error: GatewayError;
}

/**
 * The MCP door's check of a JSON-RPC body (one message or a batch) before the SDK reads it: every
 * `tools/call` the SDK would refuse without calling our handler (a malformed message or params, a
 * numeric name, arguments that are not an object, a `_meta` that is not one) and every message
 * nested deep enough to break the SDK. Undefined: nothing to refuse, the SDK may have it. Otherwise
 * the whole body is refused, one entry per message (a batch is answered as a unit: nothing in it runs).
 */
export function screenMcpBody(body: unknown): ScreenedMessage[] | undefined {
  const messages = Array.isArray(body) ? body : [body];
  const problems = messages.map(problemOf);
  if (problems.every((p) => p === undefined)) return undefined;
  const notRun = new InvalidRequest(BATCH_REFUSED, 'Not run: another message in this batch was refused');
  return messages.map((message, i) => ({
    id: idOf(message),
    toolCall: isToolCall(message),
    ...(problems[i] ?? { rpcCode: JSONRPC_INVALID_REQUEST, error: notRun }),
  }));
}

/** The methods a door may read a tool call from: what it must find on the audit record. */
export function isToolCall(message: unknown): message is Record<string, unknown> {
  return isObject(message) && message.method === 'tools/call';
}

const NOT_A_CALL = 'Not a valid tools/call: params need a string name and an object of arguments';

function problemOf(message: unknown): Pick<ScreenedMessage, 'rpcCode' | 'error'> | undefined {
  // First, so nothing below (nor the SDK) walks a value of unbounded depth.
  if (exceedsDepth(message, MAX_MESSAGE_DEPTH)) {
    const params = isToolCall(message) ? message.params : undefined;
    if (isObject(params) && exceedsDepth(params.arguments, MAX_ARGUMENT_DEPTH)) {
      return invalidParams('arguments_too_deep', `arguments nest deeper than ${MAX_ARGUMENT_DEPTH} levels`);
    }
    return {
      rpcCode: JSONRPC_INVALID_REQUEST,
      error: new InvalidRequest('message_too_deep', `The JSON-RPC message nests deeper than ${MAX_MESSAGE_DEPTH} levels`),
    };
  }
  if (!isToolCall(message)) return undefined;
  if (!isJSONRPCRequest(message)) {
    const error = new InvalidRequest(
      'invalid_jsonrpc_request',
      'Not a valid JSON-RPC request: it needs "jsonrpc": "2.0", an integer or string id, a params object whose _meta (if any) is an object with a string or integer progressToken, and no other members',
    );
    return { rpcCode: JSONRPC_INVALID_REQUEST, error };
  }
  const { params } = message;
  if (!isObject(params)) return invalidParams('invalid_params', NOT_A_CALL, [{ field: 'params', message: 'must be an object' }]);
  const details: Array<{ field: string; message: string }> = [];
  if (typeof params.name !== 'string') details.push({ field: 'params.name', message: 'must be a string' });
  if (params.arguments !== undefined && !isObject(params.arguments)) details.push({ field: 'params.arguments', message: 'must be an object' });
  if (params.task !== undefined && !(isObject(params.task) && ['undefined', 'number'].includes(typeof params.task.ttl))) {
    details.push({ field: 'params.task', message: 'must be an object whose ttl (if any) is a number' });
  }
  if (details.length === 0) return undefined;
  return invalidParams('invalid_params', NOT_A_CALL, details);
}

function invalidParams(reasonCode: string, message: string, details?: unknown[]): Pick<ScreenedMessage, 'rpcCode' | 'error'> {
  return { rpcCode: JSONRPC_INVALID_PARAMS, error: new InvalidRequest(reasonCode, message, details) };
}

function idOf(message: unknown): JsonRpcId {
  const id = isObject(message) ? message.id : undefined;
  return typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id)) ? id : null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
