import { toolEntrySchema } from '../../config/config.schema';
import type { ToolCommon } from '../../config/gateway-config';
import type { ToolKindConfig } from '../../config/tool-kind-config';

export const FS_KINDS = ['fs.read', 'fs.list', 'fs.write', 'fs.delete'] as const;

/** A file tool: reads, lists, writes or deletes in the workspace, at the `path` argument. */
export interface FsTool extends ToolCommon {
  kind: (typeof FS_KINDS)[number];
}

declare module '../../config/gateway-config' {
  interface ToolTypes {
    fs: FsTool;
  }
}

/** gateway.yaml's `kind: fs.*` entries: nothing of their own besides the common fields. */
export const fsToolConfig: ToolKindConfig = {
  name: 'fs',
  kinds: FS_KINDS,
  // Tools that change the workspace wait for a human unless the operator says otherwise.
  toolSchemas: FS_KINDS.map((kind) => toolEntrySchema(kind, kind === 'fs.write' || kind === 'fs.delete')),
  parse: () => ({ fields: {} }),
};
