import { Inject, Injectable } from '@nestjs/common';
import type { Tool } from '../config/gateway-config';
import { TOOL_KINDS, type ToolKind } from './tool-kind';

/** The registered tool kinds, by the `kind:` values they run. */
@Injectable()
export class ToolKinds {
  private readonly byName = new Map<string, ToolKind>();

  constructor(@Inject(TOOL_KINDS) readonly all: readonly ToolKind[]) {
    for (const kind of all) for (const name of kind.kinds) this.byName.set(name, kind);
  }

  /** The kind that checks and runs `tool` (the config admits only registered kinds). */
  of(tool: Tool): ToolKind {
    return this.byName.get(tool.kind)!;
  }
}
