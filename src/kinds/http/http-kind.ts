import { Injectable } from '@nestjs/common';
import { Redactor } from '../../redaction/redactor';
import { SecretStore } from '../../secrets/secret-store';
import type { ToolArguments, ToolHints, ToolKind, ToolPreview, ToolResult } from '../tool-kind';
import type { HttpTool } from './http-config';
import { previewHttpCall } from './http-preview';
import { HttpToolRunner } from './http-tool';

/** `kind: http`: one request to a listed host, secrets injected into its headers at the last moment. */
@Injectable()
export class HttpKind implements ToolKind<HttpTool> {
  readonly kinds = ['http'] as const;
  private readonly runner: HttpToolRunner;

  constructor(
    secrets: SecretStore,
    private readonly redactor: Redactor,
  ) {
    this.runner = new HttpToolRunner(secrets);
  }

  preflight(tool: HttpTool, args: ToolArguments): void {
    this.runner.prepare(tool, args);
  }

  execute(tool: HttpTool, args: ToolArguments, signal: AbortSignal): Promise<ToolResult> {
    return this.runner.run(tool, args, signal);
  }

  /** The request the call would send, secrets left as `${secret:NAME}`: no network, no secret read. */
  preview(tool: HttpTool, args: ToolArguments): Promise<ToolPreview> {
    return Promise.resolve(previewHttpCall(this.runner, this.redactor, tool, args));
  }

  hints(): ToolHints {
    return { readOnlyHint: false, destructiveHint: true, openWorldHint: true };
  }

  close(): Promise<void> {
    return this.runner.close();
  }
}
