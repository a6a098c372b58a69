import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { TOOL_CALL } from '../context/route.decorators';
import { InvalidRequest } from '../core/errors';
import { bodyValidator } from '../core/json-schema.pipe';
import { exceedsDepth, MAX_ARGUMENT_DEPTH } from '../core/json-walk';
import { contextOf, REQUEST_ID_PATTERN, ToolCallEnvelope } from '../context/request-context';

export const envelopeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['agent_id', 'agent_version', 'request_id', 'tool', 'arguments'],
  properties: {
    agent_id: { type: 'string', minLength: 1, maxLength: 128 },
    agent_version: { type: 'string', pattern: '^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$' },
    request_id: { type: 'string', pattern: REQUEST_ID_PATTERN },
    tool: { type: 'string', minLength: 1, maxLength: 128 },
    arguments: { type: 'object' },
  },
} as const;

const validateEnvelope = bodyValidator<ToolCallEnvelope>(envelopeSchema, 'invalid_envelope', 'Not a valid tool-call envelope');

/**
 * The envelope check (row 4 of the order of checks, README), for both doors: a well-formed envelope, with arguments bounded in depth (checked
 * before anything walks them: policy, schema, audit). Throws 400 invalid_request.
 */
export function checkEnvelope(value: unknown): ToolCallEnvelope {
  const envelope = validateEnvelope(value);
  if (exceedsDepth(envelope.arguments, MAX_ARGUMENT_DEPTH)) {
    throw new InvalidRequest('arguments_too_deep', `arguments nest deeper than ${MAX_ARGUMENT_DEPTH} levels`);
  }
  return envelope;
}

/** The body is a well-formed envelope, else 400 invalid_envelope. */
@Injectable()
export class EnvelopeGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    if (!this.reflector.get<boolean>(TOOL_CALL, context.getHandler())) return true;
    const req = context.switchToHttp().getRequest<Request>();
    contextOf(req).envelope = checkEnvelope(req.body);
    return true;
  }
}
