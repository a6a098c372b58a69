import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { APPROVAL_STATUSES } from './approval.repository';

export const approvalDecisionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['approval_id', 'approved'],
  properties: {
    approval_id: { type: 'string', minLength: 1, maxLength: 128 },
    approved: { type: 'boolean' },
    comment: { type: 'string', maxLength: 2000 },
  },
} as const;

export class ApprovalDecisionDto {
  @ApiProperty({ example: 'approv_9b1e…' }) approval_id!: string;
  @ApiProperty({ description: 'true to approve (the call executes now), false to reject' }) approved!: boolean;
  @ApiPropertyOptional({ maxLength: 2000, example: 'Looks right' }) comment?: string;
}

export class ApprovalDecisionResultDto {
  @ApiProperty() success!: boolean;
  @ApiProperty({ enum: ['executed', 'rejected'] }) status!: 'executed' | 'rejected';
  @ApiProperty() approval_id!: string;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'The tool result, when executed' })
  result?: Record<string, unknown>;
  @ApiProperty() audit_id!: string;
}

export const ARGUMENTS_SHOWN = ['exact', 'redacted', 'summarized', 'omitted'] as const;
export type ArgumentsShown = (typeof ARGUMENTS_SHOWN)[number];

/** One approval as a listing shows it: redacted, large arguments summarized, no result. */
export class ApprovalListItemDto {
  @ApiProperty() approval_id!: string;
  @ApiProperty({ enum: APPROVAL_STATUSES, description: '"approved" while executing; "failed" when it could not run or was interrupted' })
  status!: string;
  @ApiProperty() agent_id!: string;
  @ApiProperty() agent_version!: string;
  @ApiProperty() role!: string;
  @ApiProperty() tool!: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: 'The stored arguments, as `arguments_shown` says: null when omitted',
  })
  arguments!: Record<string, unknown> | null;
  @ApiProperty({
    enum: ARGUMENTS_SHOWN,
    description:
      'exact: what will run, byte for byte (the approver detail view); redacted; summarized: redacted, and strings over 1 KiB shown as "[summarized: N bytes]"; omitted: still over 8 KiB',
  })
  arguments_shown!: ArgumentsShown;
  @ApiProperty({ description: 'Size in bytes of the JSON that arguments_sha256 covers' }) arguments_bytes!: number;
  @ApiProperty({
    description: 'Hex SHA-256 of the UTF-8 JSON.stringify of the stored arguments (compact, keys in stored order): the exact view\'s `arguments` re-serialized, and the audit approval record\'s arguments_sha256',
  })
  arguments_sha256!: string;
  @ApiProperty() request_id!: string;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) expires_at!: string;
  @ApiProperty({ nullable: true, type: String }) decided_by!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) decided_at!: string | null;
  @ApiProperty({ nullable: true, type: String }) comment!: string | null;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'Once failed: http_status, status, reason_code, error' })
  error?: unknown;
}

/** One approval: for an approver, the exact arguments; for the agent that asked, redacted. */
export class ApprovalViewDto extends ApprovalListItemDto {
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'Once executed (redacted)' }) result?: unknown;
}

export class ApprovalListDto {
  @ApiProperty({ type: [ApprovalListItemDto], description: 'Newest first; only the tools this approver may decide' }) approvals!: ApprovalListItemDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as `cursor` for the next page; null on the last page' })
  next_cursor!: string | null;
}
