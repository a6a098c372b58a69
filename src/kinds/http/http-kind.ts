import { Injectable } from '@nestjs/common';
import { SecretStore } from '../../secrets/secret-store';
import type { ToolArguments, ToolHints, ToolKind, ToolResult } from '../tool-kind';
import type { HttpTool } from './http-config';
import { HttpToolRunner } from './http-tool';

/** `kind: http`: one request to a listed host, secrets injected into its headers at the last moment. */
@Injectable()
export class HttpKind implements ToolKind<HttpTool> {
  readonly kinds = ['http'] as const;
  private readonly runner: HttpToolRunner;

  constructor(secrets: SecretStore) {
    this.runner = new HttpToolRunner(secrets);
  }

  /** The request a call would send, secrets left as `${secret:NAME}`: no network, no secret read. */
  prepare(tool: HttpTool, args: ToolArguments): ReturnType<HttpToolRunner['prepare']> {
    return this.runner.prepare(tool, args);
  }

  preflight(tool: HttpTool, args: ToolArguments): void {
    this.runner.prepare(tool, args);
  }

  execute(tool: HttpTool, args: ToolArguments, signal: AbortSignal): Promise<ToolResult> {
    return this.runner.run(tool, args, signal);
  }

  hints(): ToolHints {
    return { readOnlyHint: false, destructiveHint: true, openWorldHint: true };
  }

  close(): Promise<void> {
    return this.runner.close();
  }
}
