import { Injectable } from '@nestjs/common';
import type { RequestContext } from '../context/request-context';
import { describeClient } from './mcp-tool-server';

/**
 * Which MCP client an agent uses, for the audit records' `client`. A 2026-07-28 request names its
 * client itself; a 2025-11-25 client names it only in `initialize`, so that is remembered per agent
 * build (bounded by the configured tokens) and used for its later stateless requests.
 */
@Injectable()
export class McpClients {
  private readonly byAgentBuild = new Map<string, string>();

  seen(body: unknown, ctx: RequestContext): string | undefined {
    const key = `${ctx.agent!.id}@${ctx.agentVersion}`;
    const message = body as { method?: unknown; params?: { clientInfo?: { name?: unknown; version?: unknown } } } | null;
    if (message?.method === 'initialize') {
      const client = describeClient(message.params?.clientInfo);
      if (client) this.byAgentBuild.set(key, client);
      return client;
    }
    return this.byAgentBuild.get(key);
  }
}
