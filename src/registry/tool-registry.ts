import { Injectable } from '@nestjs/common';
import { GatewayConfig, Tool } from '../config/gateway-config';

/**
 * The registered tools. Each input_schema was compiled once with ajv (strict) when the config
 * was loaded, so an invalid schema is a config error and no call compiles anything.
 */
@Injectable()
export class ToolRegistry {
  private readonly byRole = new Map<string, Tool[]>();

  constructor(private readonly config: GatewayConfig) {
    const sorted = [...config.tools.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const role of Object.keys(config.roles)) {
      this.byRole.set(role, sorted.filter((tool) => tool.roles.includes(role)));
    }
  }

  /** Exact name match: no case folding, no trimming. */
  get(name: string): Tool | undefined {
    return this.config.tools.get(name);
  }

  /** The tools a role may use, in name order (GET /api/tools). */
  forRole(role: string): readonly Tool[] {
    return this.byRole.get(role) ?? [];
  }
}
