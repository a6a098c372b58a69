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

/** A character that draws nothing or reorders the text around it, and where it is. */
export class HiddenCharacterDto {
  @ApiProperty({ example: 'U+202E' }) character!: string;
  @ApiProperty({ example: 'right-to-left override' }) name!: string;
  @ApiProperty({ example: 'argument content, line 3', description: 'The argument path (and line), or the file line, where it is' }) where!: string;
  @ApiProperty({ description: 'How many times it occurs there' }) count!: number;
}

export const ARGUMENTS_SHOWN = ['exact', 'redacted', 'summarized', 'omitted'] as const;
export type ArgumentsShown = (typeof ARGUMENTS_SHOWN)[number];

/** One approval as a listing shows it: redacted, large arguments summarized, no result. */
export class ApprovalListItemDto {
  @ApiProperty() approval_id!: string;
  @ApiProperty({
    enum: APPROVAL_STATUSES,
    description:
      '"approved" while executing; "failed" when it could not run or was interrupted; "withdrawn" when the agent took it back (a cancelled MCP task)',
  })
  status!: string;
  @ApiProperty() agent_id!: string;
  @ApiProperty() agent_version!: string;
  @ApiProperty() role!: string;
  @ApiProperty() tool!: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description:
      "The stored arguments, as `arguments_shown` says: null when omitted. Exact in the approver's detail view; in a listing, hidden and direction-changing characters are shown as <U+XXXX>",
  })
  arguments!: Record<string, unknown> | null;
  @ApiPropertyOptional({
    description:
      'The exact view only: the JSON that arguments_sha256 covers, with every hidden or direction-changing character written as a \\uXXXX escape (the same JSON value). SHA-256 of the UTF-8 of JSON.stringify(JSON.parse(arguments_json)) is arguments_sha256',
  })
  arguments_json?: string;
  @ApiProperty({
    type: [HiddenCharacterDto],
    description:
      'Characters in the arguments that draw nothing or reorder the text around them (bidirectional controls, zero-width and other format characters…), by argument path; empty when none. At most 20 entries',
  })
  hidden_characters!: HiddenCharacterDto[];
  @ApiProperty({
    enum: ARGUMENTS_SHOWN,
    description:
      'exact: what will run, byte for byte (the approver detail view); redacted; summarized: redacted, and strings over 1 KiB shown as "[summarized: N bytes]"; omitted: still over 8 KiB',
  })
  arguments_shown!: ArgumentsShown;
  @ApiProperty({ description: 'Size in bytes of the JSON that arguments_sha256 covers' }) arguments_bytes!: number;
  @ApiProperty({
    description:
      "Hex SHA-256 of the UTF-8 JSON.stringify of the stored arguments (compact, keys in stored order): the exact view's `arguments` re-serialized, and the audit approval record's arguments_sha256",
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

/** Content shown by its size and hash only (binary, or too large to send whole). */
export class ContentSummaryDto {
  @ApiProperty({ description: 'Bytes' }) size!: number;
  @ApiProperty({ nullable: true, type: String, description: 'Hex SHA-256; null for a file too large to hash here (over 64 MiB)' })
  sha256!: string | null;
}

/** Something the approver should know: mostly, that the call as it stands would fail or be refused. */
export class PreviewWarningDto {
  @ApiProperty({ example: 'parent_missing' }) code!: string;
  @ApiProperty({ example: 'The folder /workspace/reports does not exist and create_dirs is not set: the write would fail' }) message!: string;
  @ApiPropertyOptional({
    type: [HiddenCharacterDto],
    description: 'hidden_characters: each hidden or direction-changing character and where it is (argument path and line, file line)',
  })
  characters?: HiddenCharacterDto[];
}

/**
 * What an approved call would do, computed now and read-only (README, Approvals). The fields present
 * depend on `kind`. Secret values never appear: http headers show `${secret:NAME}`. A display,
 * not the call: every text shows hidden and direction-changing characters as <U+XXXX>, and the
 * first warning (hidden_characters) names them.
 */
export class ApprovalPreviewDto {
  @ApiProperty({ example: 'fs.write', description: 'The tool kind: fs.write, fs.delete, http, mcp, fs.read, fs.list' }) kind!: string;
  @ApiProperty() approval_id!: string;
  @ApiProperty({ enum: APPROVAL_STATUSES, description: 'A preview of a decided approval shows what the call would do now, not what it did' })
  status!: string;
  @ApiProperty({ format: 'date-time' }) computed_at!: string;
  @ApiPropertyOptional({ description: 'fs kinds: the workspace path, as /workspace/…' }) path?: string;
  @ApiPropertyOptional({ description: 'fs kinds: whether something is at the path now' }) exists?: boolean;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'fs.write: unified diff of the current file (or an empty new file) → the proposed content; null when either side is binary or over 256 KiB',
  })
  diff?: string | null;
  @ApiPropertyOptional({ type: ContentSummaryDto, nullable: true, description: 'fs.write: the file now (null: new file)' }) current?: ContentSummaryDto | null;
  @ApiPropertyOptional({ type: ContentSummaryDto, description: 'fs.write: the content to be written' }) proposed?: ContentSummaryDto;
  @ApiPropertyOptional({ description: 'fs.delete: bytes' }) size?: number;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'fs.delete: the first lines (up to 20 lines, 4 KiB); null when not text' }) head?:
    string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'fs.delete: hex SHA-256 of the file' }) sha256?: string | null;
  @ApiPropertyOptional({ example: 'POST', description: 'http' }) method?: string;
  @ApiPropertyOptional({ description: 'http: the final URL, arguments filled in' }) url?: string;
  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, description: 'http: the configured headers, secrets as ${secret:NAME}' })
  headers?: Record<string, string>;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'http: the JSON body sent (POST/PUT/PATCH); null when none or summarized' }) body?:
    string | null;
  @ApiPropertyOptional({ type: ContentSummaryDto, description: 'http: the body, when over 256 KiB' }) body_summary?: ContentSummaryDto;
  @ApiPropertyOptional({ description: 'mcp: the upstream server' }) server?: string;
  @ApiPropertyOptional({ description: 'mcp: the upstream tool name' }) upstream_tool?: string;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'mcp: the arguments as they will be sent (hidden characters as <U+XXXX>; the exact ones are in GET /api/approvals/{id})',
  })
  arguments?: Record<string, unknown>;
  @ApiProperty({ type: [PreviewWarningDto], description: 'hidden_characters, when there are any, comes first' }) warnings!: PreviewWarningDto[];
}
