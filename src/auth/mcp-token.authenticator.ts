import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { GatewayError } from '../core/errors';
import { Agent, GatewayConfig, McpToken } from '../config/gateway-config';
import { bearerToken, entryForToken } from './bearer-token';

/** What a bearer token on the MCP door proves: this agent, in this build. */
export interface McpIdentity {
  agent: Agent;
  agentVersion: string;
}

/** An MCP 401: the gateway's error body plus `WWW-Authenticate`, before any JSON-RPC is read. */
export class McpUnauthenticated extends GatewayError {
  constructor(reasonCode: string, message: string) {
    super(401, 'unauthenticated', reasonCode, message, undefined, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
  }
}

/**
 * The MCP door's credential: `Authorization: Bearer <token>` against every agent's `mcp_tokens[].token_sha256`,
 * each compared in constant time and without stopping early. Approver tokens are not agent tokens.
 */
@Injectable()
export class McpTokenAuthenticator {
  private readonly tokens: ReadonlyArray<{ agent: Agent; token: McpToken }>;

  constructor(config: GatewayConfig) {
    this.tokens = [...config.agents.values()].flatMap((agent) => agent.mcp_tokens.map((token) => ({ agent, token })));
  }

  authenticate(req: Request): McpIdentity {
    const token = bearerToken(req);
    if (token === undefined) throw new McpUnauthenticated('missing_token', 'Authorization: Bearer <agent MCP token> is required');
    if (token === null) throw new McpUnauthenticated('invalid_token', 'Authorization must be "Bearer <token>"');
    const found = entryForToken(token, this.tokens, (entry) => entry.token.sha256);
    if (!found) throw new McpUnauthenticated('invalid_token', 'Unknown token');
    if (found.token.expires_at !== undefined && found.token.expires_at <= Date.now()) throw new McpUnauthenticated('token_expired', 'This token has expired');
    return { agent: found.agent, agentVersion: found.token.agent_version };
  }
}
