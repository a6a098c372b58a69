import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { GatewayError } from '../core/errors';
import { ConfigSwaps } from '../config/config-reload';
import { Agent, ConfiguredAgent, GatewayConfig, McpToken } from '../config/gateway-config';
import type { OAuthCaller } from '../context/request-context';
import { bearerToken, entryForToken } from './bearer-token';
import { OAuthIdentities } from './oauth/oauth-identity';
import { protectedResourceMetadataUrl } from './oauth/oauth-metadata';
import { TOOLS_CALL_SCOPE } from './oauth/oauth-scopes';
import { OAuthTokenRefused } from './oauth/oauth-token';
import { OAuthVerifier } from './oauth/oauth-verifier';

/** The longest bearer token the MCP door reads: room for an OAuth access token (a JWT). */
const MAX_MCP_TOKEN_LENGTH = 8192;
/** An agent build an OAuth token does not name: such an agent may not pin `versions` (config check). */
const OAUTH_AGENT_VERSION = '0.0.0';

/** What a bearer token on the MCP door proves: this agent, in this build, and (an OAuth token) who the token names. */
export interface McpIdentity {
  agent: Agent;
  agentVersion: string;
  oauth?: OAuthCaller;
}

/**
 * An MCP 401: the gateway's error body plus `WWW-Authenticate`, before any JSON-RPC is read. With
 * OAuth configured, the header also points at the protected resource metadata (RFC 9728) and names
 * the scope to ask for (`tools:call`; MCP clients ask for it rather than for every scope the metadata
 * lists), and says `error="invalid_token"` only when a token was sent.
 */
export class McpUnauthenticated extends GatewayError {
  constructor(reasonCode: string, message: string, resourceMetadata?: string) {
    const challenge =
      resourceMetadata === undefined
        ? 'Bearer error="invalid_token"'
        : `Bearer ${reasonCode === 'missing_token' ? '' : 'error="invalid_token", '}resource_metadata="${resourceMetadata}", scope="${TOOLS_CALL_SCOPE}"`;
    super(401, 'unauthenticated', reasonCode, message, undefined, { 'WWW-Authenticate': challenge });
  }
}

/**
 * The MCP door's credential, `Authorization: Bearer <token>`: first against every agent's
 * `mcp_tokens[].token_sha256`, each compared in constant time and without stopping early (approver
 * tokens are not agent tokens); then, when `oauth:` is configured and the token is a JWT (or an issuer introspects opaque ones), as an
 * OAuth access token (OAuthVerifier), mapped to an agent (OAuthIdentities; none: 403).
 */
@Injectable()
export class McpTokenAuthenticator {
  private tokens: ReadonlyArray<{ agent: ConfiguredAgent; token: McpToken }>;
  private identities: OAuthIdentities;
  private readonly resourceMetadata?: string;

  constructor(
    config: GatewayConfig,
    private readonly oauth: OAuthVerifier,
    swaps: ConfigSwaps,
  ) {
    this.tokens = tokensOf(config);
    this.identities = new OAuthIdentities(config);
    this.resourceMetadata = config.oauth && protectedResourceMetadataUrl(config.oauth.resource);
    // A live reload's tokens and oauth_clients (the oauth: section itself waits for a restart).
    swaps.follow((next) => {
      const [tokens, identities] = [tokensOf(next), new OAuthIdentities(next)];
      return () => ([this.tokens, this.identities] = [tokens, identities]);
    });
  }

  async authenticate(req: Request): Promise<McpIdentity> {
    const refuse = (reasonCode: string, message: string) => new McpUnauthenticated(reasonCode, message, this.resourceMetadata);
    const token = bearerToken(req, MAX_MCP_TOKEN_LENGTH);
    if (token === undefined)
      throw refuse('missing_token', `Authorization: Bearer <${this.oauth.enabled ? 'access token or ' : ''}agent MCP token> is required`);
    if (token === null) throw refuse('invalid_token', 'Authorization must be "Bearer <token>"');
    const found = entryForToken(token, this.tokens, (entry) => entry.token.sha256);
    if (found) {
      if (found.token.expires_at !== undefined && found.token.expires_at <= Date.now()) throw refuse('token_expired', 'This token has expired');
      return { agent: found.agent, agentVersion: found.token.agent_version };
    }
    if (!this.oauth.accepts(token)) throw refuse('invalid_token', 'Unknown token');
    let mapped;
    try {
      mapped = this.identities.map(await this.oauth.verify(token));
    } catch (err) {
      if (err instanceof OAuthTokenRefused) throw refuse(err.reasonCode, err.message);
      throw err;
    }
    if ('refused' in mapped) throw new OAuthNoAgent(mapped.refused, mapped.caller);
    return { agent: mapped.agent, agentVersion: OAUTH_AGENT_VERSION, oauth: mapped.caller };
  }
}

/** 403: a valid token that acts as no agent (no listed client, no declared role in its claim). */
export class OAuthNoAgent extends GatewayError {
  constructor(
    reasonCode: 'no_agent_for_token' | 'agent_id_too_long',
    /** Who the token names: the refusal's record says so. */
    readonly caller: OAuthCaller,
  ) {
    super(
      403,
      'denied',
      reasonCode,
      reasonCode === 'no_agent_for_token'
        ? "The token is valid, but acts as no agent here: its client is not in any agent's oauth_clients, and it names no declared role"
        : "The token's issuer and subject make an agent id longer than 128 characters",
    );
  }
}

function tokensOf(config: GatewayConfig): ReadonlyArray<{ agent: ConfiguredAgent; token: McpToken }> {
  return [...config.agents.values()].flatMap((agent) => agent.mcp_tokens.map((token) => ({ agent, token })));
}
