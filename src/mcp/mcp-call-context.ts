import { newAuditId, type RequestContext } from '../context/request-context';

/**
 * One MCP message's own context, as a call of the door's request: its own audit_id and clock, the
 * agent, origin and OAuth identity the door established, and the client (the message's, where it
 * names one). Every tools/call, read, get and refusal in one HTTP request is recorded on its own.
 */
export function callContext<T extends RequestContext>(http: T, client: string | undefined = http.client): T {
  return {
    auditId: newAuditId(),
    startedAt: performance.now(),
    audited: true,
    origin: http.origin,
    channel: 'mcp',
    client,
    agent: http.agent,
    agentVersion: http.agentVersion,
    oauth: http.oauth,
  } as T;
}
