import { Injectable } from '@nestjs/common';
import type { RequestContext } from '../context/request-context';
import { describeClient } from './mcp-tool-server';

/**
 * Which MCP client an agent uses, for the audit records' `client`. A 2026-07-28 request names its
 * client itself; a 2025-11-25 client names it only in `initialize`, so that is remembered per agent
 * build and used for its later stateless requests. OAuth callers mapped by role are not declared one
 * by one, so the map keeps the most recent MAX_REMEMBERED.
 */
const MAX_REMEMBERED = 10_000;

@Injectable()
export class McpClients {
  private readonly byAgentBuild = new Map<string, string>();

  seen(body: unknown, ctx: RequestContext): string | undefined {
    const key = `${ctx.agent!.id}@${ctx.agentVersion}`;
    const message = body as { method?: unknown; params?: { clientInfo?: { name?: unknown; version?: unknown } } } | null;
    if (message?.method === 'initialize') {
      const client = describeClient(message.params?.clientInfo);
      if (client) {
        this.byAgentBuild.delete(key);
        this.byAgentBuild.set(key, client);
        if (this.byAgentBuild.size > MAX_REMEMBERED) this.byAgentBuild.delete(this.byAgentBuild.keys().next().value!);
      }
      return client;
    }
    return this.byAgentBuild.get(key);
  }
}
