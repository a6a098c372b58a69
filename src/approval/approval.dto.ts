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

export class ApprovalViewDto {
  @ApiProperty() approval_id!: string;
  @ApiProperty({ enum: APPROVAL_STATUSES, description: '"approved" while executing; "failed" when it could not run or was interrupted' })
  status!: string;
  @ApiProperty() agent_id!: string;
  @ApiProperty() agent_version!: string;
  @ApiProperty() role!: string;
  @ApiProperty() tool!: string;
  @ApiProperty({ type: 'object', additionalProperties: true }) arguments!: Record<string, unknown>;
  @ApiProperty() request_id!: string;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) expires_at!: string;
  @ApiProperty({ nullable: true, type: String }) decided_by!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) decided_at!: string | null;
  @ApiProperty({ nullable: true, type: String }) comment!: string | null;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'Once executed' }) result?: unknown;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'Once failed: http_status, status, reason_code, error' })
  error?: unknown;
}

export class ApprovalListDto {
  @ApiProperty({ type: [ApprovalViewDto] }) approvals!: ApprovalViewDto[];
}
