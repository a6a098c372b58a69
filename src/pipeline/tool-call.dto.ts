import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { REQUEST_ID_PATTERN } from '../context/request-context';

export class ToolCallRequestDto {
  @ApiProperty({ example: 'agent_deploy_001', description: 'Must equal X-Agent-Id' }) agent_id!: string;
  @ApiProperty({ example: '1.2.0', description: 'semver-like, 1–64 chars' }) agent_version!: string;
  @ApiProperty({ example: 'req_uuid_123', pattern: REQUEST_ID_PATTERN }) request_id!: string;
  @ApiProperty({ example: 'read_file', description: 'A registered tool name (exact match)' }) tool!: string;
  @ApiProperty({ type: 'object', additionalProperties: true, example: { path: '/workspace/hello.txt' } })
  arguments!: Record<string, unknown>;
}

export class ToolCallExecutedDto {
  @ApiProperty({ example: true }) success!: boolean;
  @ApiProperty({ example: 'executed' }) status!: string;
  @ApiProperty({ type: 'object', additionalProperties: true, example: { path: '/workspace/hello.txt', content: 'hello', size: 5 } })
  result!: Record<string, unknown>;
  @ApiProperty({ example: 'audit_4f0c…' }) audit_id!: string;
  @ApiProperty({ example: 'req_uuid_123' }) request_id!: string;
}

export class ToolCallPendingDto {
  @ApiProperty({ example: false }) success!: boolean;
  @ApiProperty({ example: 'pending_approval' }) status!: string;
  @ApiProperty({ example: 'approv_9b1e…' }) approval_id!: string;
  @ApiProperty({ format: 'date-time', description: 'When the approval expires if nobody decides' }) expires_at!: string;
  @ApiProperty({ example: 'Human approval required' }) error!: string;
  @ApiProperty({ example: 'audit_4f0c…' }) audit_id!: string;
  @ApiProperty({ example: 'req_uuid_123' }) request_id!: string;
}

export class ToolDefinitionDto {
  @ApiProperty({ example: 'read_file' }) name!: string;
  @ApiProperty({ example: 'Read a UTF-8 text file from the workspace' }) description!: string;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'JSON Schema of the arguments' })
  input_schema!: Record<string, unknown>;
  @ApiProperty() requires_approval!: boolean;
  @ApiPropertyOptional({ example: 10000 }) timeout_ms!: number;
}

export class ToolListDto {
  @ApiProperty({ type: [ToolDefinitionDto] }) tools!: ToolDefinitionDto[];
}
