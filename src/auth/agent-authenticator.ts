import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { Unauthenticated } from '../core/errors';
import { Agent, GatewayConfig } from '../config/gateway-config';
import { bodySha256Of } from './body-hash';
import { stringToSignWithBodyHash, verifySignature } from './signature';

const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const TIMESTAMP = /^[0-9]{1,15}$/;
// base64 of at most 64 bytes is 88 characters; anything longer is not a signature.
const SIGNATURE = /^[A-Za-z0-9+/]{2,86}={0,2}$/;

/** Verifies the X-Agent-* headers (README "Quick start", `npm run call`) over the raw body and names the agent. */
@Injectable()
export class AgentAuthenticator {
  constructor(private readonly config: GatewayConfig) {}

  authenticate(req: Request & { rawBody?: Buffer }): Agent {
    const agentId = req.header('x-agent-id');
    const timestamp = req.header('x-agent-timestamp');
    const signature = req.header('x-agent-signature');
    if (!agentId || !timestamp || !signature) {
      throw new Unauthenticated('missing_signature', 'X-Agent-Id, X-Agent-Timestamp and X-Agent-Signature are required');
    }
    if (!AGENT_ID.test(agentId)) throw new Unauthenticated('malformed_headers', 'X-Agent-Id is malformed');
    if (!TIMESTAMP.test(timestamp)) throw new Unauthenticated('malformed_headers', 'X-Agent-Timestamp must be Unix time in whole seconds');
    if (!SIGNATURE.test(signature) || signature.length % 4 !== 0) {
      throw new Unauthenticated('malformed_headers', 'X-Agent-Signature must be base64');
    }

    const agent = this.config.agents.get(agentId);
    if (!agent) throw new Unauthenticated('unknown_agent', 'Unknown agent');

    const skew = Math.abs(Date.now() / 1000 - Number(timestamp));
    const tolerance = this.config.settings.signature_tolerance_s;
    if (!(skew <= tolerance)) {
      throw new Unauthenticated('timestamp_out_of_range', `X-Agent-Timestamp is more than ${tolerance} s from the gateway's clock (Unix seconds expected)`);
    }

    const payload = stringToSignWithBodyHash(timestamp, req.method, req.originalUrl, bodySha256Of(req));
    if (!verifySignature(agent.key, payload, Buffer.from(signature, 'base64'))) {
      throw new Unauthenticated('bad_signature', 'Signature does not match');
    }

    const bodyAgentId = (req.body as { agent_id?: unknown } | undefined)?.agent_id;
    if (bodyAgentId !== undefined && bodyAgentId !== agentId) {
      throw new Unauthenticated('agent_id_mismatch', 'Body agent_id differs from X-Agent-Id');
    }
    return agent;
  }
}
