import { SECRET_REFERENCE } from '../../config/gateway-config';
import { sha256Hex } from '../../core/hashing';
import type { Redactor } from '../../redaction/redactor';
import { PREVIEW_TEXT_MAX_BYTES, previewWarning, type ToolArguments, type ToolPreview } from '../tool-kind';
import type { HttpTool } from './http-config';
import type { HttpToolRunner } from './http-tool';

/**
 * The approval preview of an http call: the request as the runner would build it (no network, no
 * secret read), its headers with `${secret:NAME}` left as names and any literal credential redacted.
 */
export function previewHttpCall(runner: HttpToolRunner, redactor: Redactor, tool: HttpTool, args: ToolArguments): ToolPreview {
  const { url, body } = runner.prepare(tool, args);
  const headers = Object.fromEntries(Object.entries(tool.request.headers).map(([name, template]) => [name, shownHeader(redactor, template)]));
  const preview: ToolPreview = { kind: 'http', method: tool.request.method, url: url.href, headers, body: body ?? null, warnings: [] };
  if (body !== undefined && Buffer.byteLength(body) > PREVIEW_TEXT_MAX_BYTES) {
    preview.body = null;
    preview.body_summary = { size: Buffer.byteLength(body), sha256: sha256Hex(body) };
    preview.warnings.push(previewWarning('content_summarized', `The body is larger than ${PREVIEW_TEXT_MAX_BYTES / 1024} KiB: shown by size and SHA-256`));
  }
  return preview;
}

/** `${secret:NAME}` stays a name; a credential written into the config literally is redacted. */
function shownHeader(redactor: Redactor, template: string): string {
  let shown = '';
  let from = 0;
  for (const ref of template.matchAll(SECRET_REFERENCE)) {
    shown += redactor.redactString(template.slice(from, ref.index)) + ref[0];
    from = ref.index + ref[0].length;
  }
  return shown + redactor.redactString(template.slice(from));
}
