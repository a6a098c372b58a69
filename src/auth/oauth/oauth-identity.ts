import type { Agent, ConfiguredAgent, GatewayConfig, OAuthIssuer } from '../../config/gateway-config';
import type { OAuthCaller } from '../../context/request-context';
import type { VerifiedToken } from './oauth-token';

/** The longest agent id a call's envelope takes: a role-mapped caller's `<issuer>#<subject>` must fit. */
const MAX_AGENT_ID = 128;

/** Who a verified token acts as, or why nobody (403). */
export type OAuthMapping = { agent: Agent; caller: OAuthCaller } | { refused: 'no_agent_for_token' | 'agent_id_too_long'; caller: OAuthCaller };

/**
 * Who a verified access token acts as at the MCP door:
 * 1. the declared agent whose `oauth_clients` lists the token's `client_id` (else its `azp`);
 * 2. else, when the issuer has a `role_claim`, an undeclared agent `<issuer>#<subject>` in the first
 *    role that claim names that is declared under `roles` (a string, or a list);
 * 3. else nobody.
 */
export class OAuthIdentities {
  private readonly byClient: ReadonlyMap<string, ConfiguredAgent>;

  constructor(private readonly config: GatewayConfig) {
    const issuers = config.oauth?.issuers.map((i) => i.issuer) ?? [];
    this.byClient = new Map([...config.agents.values()].flatMap((agent) => agent.oauth_clients.map((client) => [clientKey(issuers, client), agent] as const)));
  }

  map({ issuer, claims }: VerifiedToken): OAuthMapping {
    const clientId = stringClaim(claims.client_id) ?? stringClaim(claims.azp);
    const act = claims.act as { sub?: unknown } | undefined;
    const caller: OAuthCaller = {
      issuer: issuer.issuer,
      subject: claims.sub!,
      ...(clientId !== undefined && { client_id: clientId }),
      ...(typeof act?.sub === 'string' && { act_sub: act.sub }),
      ...(typeof claims.scope === 'string' && { scopes: claims.scope.split(' ').filter(Boolean) }),
    };
    // A client id counts only from the issuer it was named for: another realm may have a client of that name.
    const declared = clientId === undefined ? undefined : this.byClient.get(`${issuer.issuer}#${clientId}`);
    if (declared) return { agent: declared, caller };
    const role = this.roleOf(issuer, claims);
    if (role === undefined) return { refused: 'no_agent_for_token', caller };
    const id = `${issuer.issuer}#${caller.subject}`;
    if (id.length > MAX_AGENT_ID) return { refused: 'agent_id_too_long', caller };
    return { agent: { id, role }, caller };
  }

  private roleOf(issuer: OAuthIssuer, claims: Record<string, unknown>): string | undefined {
    if (issuer.role_claim === undefined) return undefined;
    let value: unknown = claims;
    for (const part of issuer.role_claim.split('.')) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
    const named = typeof value === 'string' ? value.split(' ') : Array.isArray(value) ? value : [];
    return named.find((role): role is string => typeof role === 'string' && Object.prototype.hasOwnProperty.call(this.config.roles, role));
  }
}

/**
 * `<issuer>#<client_id>`: an oauth_clients entry written so, or a bare client id when exactly one
 * issuer is configured (the loader refuses a bare one beside several issuers).
 */
export function clientKey(issuers: readonly string[], entry: string): string {
  return issuers.some((issuer) => entry.startsWith(`${issuer}#`)) ? entry : `${issuers[0]}#${entry}`;
}

function stringClaim(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The agent a stored call (an approval) of a role-mapped OAuth caller runs as, once approved: its
 * `<issuer>#<subject>` id in the role it had, while that issuer still maps roles and the role is
 * still declared. Undefined otherwise (the agent is then no longer configured).
 */
export function roleMappedAgent(config: GatewayConfig, agentId: string, role: string): Agent | undefined {
  const issuer = config.oauth?.issuers.find((i) => i.role_claim !== undefined && agentId.startsWith(`${i.issuer}#`));
  return issuer && Object.prototype.hasOwnProperty.call(config.roles, role) ? { id: agentId, role } : undefined;
}
