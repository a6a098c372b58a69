import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** The gateway's error body, for every refusal and failure (Swagger only; the filter builds the real one). */
export class ErrorResponseDto {
  @ApiProperty({ example: false }) success!: boolean;
  @ApiProperty({
    example: 'denied',
    enum: ['invalid_request', 'invalid_arguments', 'unauthenticated', 'denied', 'not_found', 'conflict', 'rate_limited', 'tool_error', 'tool_timeout', 'audit_unavailable', 'policy_unavailable', 'internal_error'],
  })
  status!: string;
  @ApiProperty({ example: 'tool_not_allowed_for_role' }) reason_code!: string;
  @ApiProperty({ example: 'Role reader may not use tool write_file' }) error!: string;
  @ApiProperty({ example: 'audit_4f0c…' }) audit_id!: string;
  @ApiPropertyOptional({ example: 'req_uuid_123' }) request_id?: string;
  @ApiPropertyOptional({ type: 'array', items: { type: 'object' }, description: 'e.g. ajv errors for invalid_arguments' })
  details?: object[];
}
