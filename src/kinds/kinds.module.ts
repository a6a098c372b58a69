import { Module } from '@nestjs/common';
import { TOOL_KIND_PLUGINS } from './index';
import { TOOL_KINDS, type ToolKind } from './tool-kind';
import { ToolKinds } from './tool-kinds';

const runtimes = TOOL_KIND_PLUGINS.map((kind) => kind.runtime);

/** The tool kinds' runtimes as one multi-provider (TOOL_KINDS), and ToolKinds to look one up. */
@Module({
  providers: [...runtimes, { provide: TOOL_KINDS, inject: runtimes, useFactory: (...kinds: ToolKind[]) => kinds }, ToolKinds],
  exports: [...runtimes, TOOL_KINDS, ToolKinds],
})
export class KindsModule {}
