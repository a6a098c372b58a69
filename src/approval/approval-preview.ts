import { Injectable } from '@nestjs/common';
import { createTwoFilesPatch } from 'diff';
import { Redactor } from '../redaction/redactor';
import { GatewayError } from '../core/errors';
import { HiddenCharacterScan, showHiddenIn } from '../core/visible-text';
import { GatewayConfig, Tool } from '../config/gateway-config';
import { ExecutorService } from '../executor/executor.service';
import { PREVIEW_TEXT_MAX_BYTES, type PreviewChange, previewRefusal, previewWarning, type ToolPreview } from '../kinds/tool-kind';
import type { ApprovalPreviewDto, ApprovalViewDto } from './approval.dto';

const DIFF_TIMEOUT_MS = 2000;

type Preview = Omit<ApprovalPreviewDto, 'approval_id' | 'status' | 'computed_at'>;

/**
 * GET /api/approvals/{id}/preview (README, Approvals): what approving would do, computed now, read-only.
 * The tool's kind says what its call would do (paths confined and files read through the
 * workspace's checked descriptors, the http request built by the runner's own request builder: no
 * network, no secret read); a check the call would fail at execution is a warning, not an error.
 * Here, for every kind: a proposed change is shown as a unified diff, every text in the answer shows
 * hidden and direction-changing characters as <U+XXXX>, and a first warning (hidden_characters)
 * names each one and where it is (in the arguments, and in what the kind showed of a file).
 */
@Injectable()
export class ApprovalPreviewer {
  constructor(
    private readonly config: GatewayConfig,
    private readonly executor: ExecutorService,
    private readonly redactor: Redactor,
  ) {}

  /** `approval`: the approver's view (exact arguments), so who may see it was decided by ApprovalService. */
  async preview(approval: ApprovalViewDto): Promise<ApprovalPreviewDto> {
    const args = approval.arguments ?? {};
    const tool = this.config.tools.get(approval.tool);
    const hidden = new HiddenCharacterScan().value('argument', args);
    const preview: Preview = tool
      ? await this.forTool(tool, args, hidden)
      : { kind: 'unknown', warnings: [previewWarning('tool_not_registered', `Tool "${approval.tool}" is no longer configured: the call would be refused`)] };
    const found = hidden.describe();
    if (found) preview.warnings.unshift({ code: 'hidden_characters', message: found, characters: hidden.findings });
    // As every tool result: no secret value the gateway knows leaves it (a file may hold one).
    const scrubbed = this.redactor.scrubSecrets({
      approval_id: approval.approval_id,
      status: approval.status,
      computed_at: new Date().toISOString(),
      ...preview,
    });
    return showHiddenIn(scrubbed);
  }

  /** `hidden` collects the hidden characters of the texts the kind shows (the arguments are already in it). */
  private async forTool(tool: Tool, args: Record<string, unknown>, hidden: HiddenCharacterScan): Promise<Preview> {
    let preview: ToolPreview;
    try {
      preview = await this.executor.preview(tool, args);
    } catch (err) {
      if (err instanceof GatewayError) return { kind: tool.kind, warnings: [previewRefusal(err)] };
      throw err;
    }
    const { shown, change } = preview;
    delete preview.shown;
    delete preview.change;
    for (const { where, text } of shown ?? []) hidden.text(where, text, true);
    if (change) await withDiff(preview, change);
    return preview;
  }
}

/** Sets `diff` (null when the change cannot be shown as one, with the warning why). */
async function withDiff(preview: ToolPreview, change: PreviewChange): Promise<void> {
  if (change.current === null || change.proposed === null) {
    preview.diff = null;
    preview.warnings.push(previewWarning('content_summarized', `Binary, or larger than ${PREVIEW_TEXT_MAX_BYTES / 1024} KiB: shown by size and SHA-256`));
    return;
  }
  preview.diff = (await unifiedDiff(change.name, change.current, change.proposed, change.created)) ?? null;
  if (preview.diff === null) preview.warnings.push(previewWarning('diff_unavailable', 'The change is too large to show as a diff: compare sizes and SHA-256'));
}

/** Computed without blocking the event loop; undefined when it would take too long. */
function unifiedDiff(path: string, current: string, proposed: string, newFile: boolean): Promise<string | undefined> {
  return new Promise((resolve) => {
    createTwoFilesPatch(path, path, current, proposed, newFile ? 'new file' : 'current', 'proposed', {
      context: 3,
      timeout: DIFF_TIMEOUT_MS,
      callback: resolve,
    });
  });
}
