import type { CallToolResult } from '@modelcontextprotocol/server';
import type { ApprovalViewDto } from '../approval/approval.dto';
import type { StoredError } from '../approval/approval.repository';
import type { McpResult } from '../registry/tool-registry';
import type { ErrorBody } from '../pipeline/error-body';
import type { ToolCallBody } from '../pipeline/tool-call.pipeline';
import type { ToolCallExecutedDto, ToolCallPendingDto } from '../pipeline/tool-call.dto';

/** How the called tool's answers are shaped: its kind's own result shape (ToolRegistry.mcpResultOf), and whether it lists an outputSchema. */
export interface McpShape {
  resultOf(result: Record<string, unknown>): McpResult | undefined;
  hasOutputSchema: boolean;
}

/**
 * A tool call's answer as MCP's CallToolResult: executed → the result (an upstream MCP tool's own
 * content items and structuredContent, passed through whole; any other tool's result as one text
 * block of JSON and as structuredContent); refused, failed or waiting for a human → `isError: true`
 * (the call did not run) with the same fields the REST body has, and one line of text a model can act on.
 */
export function toCallToolResult(body: ToolCallBody, shape?: McpShape): CallToolResult {
  const answer = callToolResult(body, shape);
  // A client checks the structuredContent of a tool with an outputSchema against it, errors too (SDK v1):
  // a refusal's fields then stay in its text only.
  if (answer.isError && shape?.hasOutputSchema) delete answer.structuredContent;
  return answer;
}

function callToolResult(body: ToolCallBody, shape?: McpShape): CallToolResult {
  if (body.status === 'executed') {
    const { result } = body as ToolCallExecutedDto;
    const own = shape?.resultOf(result);
    if (own) return { ...(own as CallToolResult), isError: false };
    return { content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: result, isError: false };
  }
  if (body.status === 'pending_approval') {
    const { approval_id, expires_at, audit_id, request_id } = body as ToolCallPendingDto;
    return {
      content: [
        {
          type: 'text',
          text: `This call waits for a human approver (approval_id ${approval_id}, until ${expires_at}). It has not run. Call the tool approval_status with {"approval_id":"${approval_id}"} later to learn the outcome.`,
        },
      ],
      structuredContent: { status: 'pending_approval', approval_id, expires_at, audit_id, request_id },
      isError: true,
    };
  }
  const { status, reason_code, error, audit_id, request_id, details, details_total } = body as ErrorBody;
  const structured = { status, reason_code, error, audit_id, request_id, ...(details && { details }), ...(details_total && { details_total }) };
  return { content: [{ type: 'text', text: `${status} (${reason_code}): ${error}` }], structuredContent: structured, isError: true };
}

/**
 * An approval that ended without a result, as an error body's fields. Failed: its stored error, as
 * the approver was answered. Rejected, expired or withdrawn (no error stored): the same word as
 * status and reason_code.
 */
export function approvalEnded(view: ApprovalViewDto): Pick<ErrorBody, 'status' | 'reason_code' | 'error'> {
  const stored = view.error as StoredError | undefined;
  if (stored) return { status: stored.status, reason_code: stored.reason_code, error: stored.error };
  return { status: view.status, reason_code: view.status, error: approvalEndedText(view) };
}

/** One line on how an approval ended without a result. */
export function approvalEndedText(view: ApprovalViewDto): string {
  const stored = view.error as StoredError | undefined;
  if (stored) return `${stored.status} (${stored.reason_code}): ${stored.error}`;
  if (view.status === 'rejected') return `rejected by ${view.decided_by}; the call did not run`;
  if (view.status === 'expired') return `expired at ${view.expires_at} before anyone decided; the call did not run`;
  return `the approval ended ${view.status}; the call did not run`;
}
