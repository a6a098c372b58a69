import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** The gateway's error body, for every refusal and failure (Swagger only; the filter builds the real one). */
export class ErrorResponseDto {
  @ApiProperty({ example: false }) success!: boolean;
  @ApiProperty({
    example: 'denied',
    enum: [
      'invalid_request',
      'invalid_arguments',
      'unauthenticated',
      'denied',
      'not_found',
      'conflict',
      'expired',
      'rate_limited',
      'tool_error',
      'tool_timeout',
      'cancelled',
      'tool_unavailable',
      'audit_unavailable',
      'policy_unavailable',
      'rate_limit_unavailable',
      'database_unavailable',
      'not_ready',
      'internal_error',
    ],
    description: 'The kind of refusal; reason_code says exactly why (each operation lists its codes)',
  })
  status!: string;
  @ApiProperty({ example: 'tool_not_allowed_for_role' }) reason_code!: string;
  @ApiProperty({ example: 'Role reader may not use tool write_file', description: 'For people: redacted, never a stack trace, a secret or a host path' })
  error!: string;
  @ApiProperty({ example: 'audit_4f0c…' }) audit_id!: string;
  @ApiPropertyOptional({ example: 'req_uuid_123' }) request_id?: string;
  @ApiPropertyOptional({
    type: 'array',
    items: { type: 'object' },
    description: 'e.g. ajv errors for invalid_arguments, [{path}] for forbidden_field; at most 20 entries',
  })
  details?: object[];
  @ApiPropertyOptional({ example: 57, description: 'How many details there were, when more than 20' })
  details_total?: number;
}
