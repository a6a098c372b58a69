import { Controller, Get, Query, UseInterceptors } from '@nestjs/common';
import { ApiBadRequestResponse, ApiForbiddenResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ApproverAuth } from '../context/route.decorators';
import { ErrorResponseDto } from '../core/dto';
import { InvalidRequest, PolicyDenied } from '../core/errors';
import { parseLimit } from '../core/query';
import { Ctx, REQUEST_ID_PATTERN, RequestContext } from '../context/request-context';
import { AuditLog } from '../audit/audit-log.service';
import type { AuditRecord } from '../audit/audit-record';
import { AuditInterceptor } from '../edge/audit.interceptor';

class AuditRecordsDto {
  @ApiProperty({
    type: 'array',
    items: { type: 'object' },
    description:
      "Audit records, oldest first. event: request (refused before the policy: 401, 400, 413, 415; approver reads), decision (allow, pending or deny, with the redacted arguments, written before anything runs), approval (an approver's allow or deny), outcome (executed, pending_approval, tool_error, …, duration_ms), replay, upstream_change, config_reload (a configuration reload, status applied or refused: config.trigger, config.changes by section with the names added, removed or changed, config.restart_required). Fields where known: ts, seq, audit_id, instance_id, event, method, path, channel (rest|mcp), client, request_id, agent_id, agent_version, role, tool, approver_id, client_ip, decision, arguments (at most 16 KiB; then arguments_truncated, with arguments_bytes and arguments_sha256 of the exact JSON), status, reason_code, http_status, approval_id, duration_ms, seal (hmac-sha256 with GATEWAY_AUDIT_KEY, else sha256), prev_hash, hash. Redacted: values under keys such as password, secret, token, api key, authorization, cookie, private key, credential and the forbidden fields become [REDACTED]; e-mail addresses, US SSNs, card numbers, JWTs, bearer tokens, AWS key ids, PEM private keys and every known secret value become [REDACTED:<kind>:<hash>], the same marker for the same value",
  })
  records!: AuditRecord[];
}

const ID = new RegExp(REQUEST_ID_PATTERN);

@ApiTags('audit')
@Controller('api/audit')
@UseInterceptors(AuditInterceptor)
export class AuditController {
  constructor(private readonly audit: AuditLog) {}

  @Get()
  @ApproverAuth()
  @ApiOperation({
    summary: 'Audit records matching every given filter (the newest `limit`), of every instance when they share a database; for approvers with `audit: true`',
  })
  @ApiQuery({ name: 'request_id', required: false })
  @ApiQuery({ name: 'agent_id', required: false })
  @ApiQuery({ name: 'audit_id', required: false })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } })
  @ApiOkResponse({ type: AuditRecordsDto })
  @ApiBadRequestResponse({ type: ErrorResponseDto, description: 'invalid_query: a malformed id or a limit outside 1–1000' })
  @ApiForbiddenResponse({ type: ErrorResponseDto, description: 'audit_not_allowed: this approver has no `audit: true`' })
  async find(
    @Ctx() ctx: RequestContext,
    @Query('request_id') request_id?: string,
    @Query('agent_id') agent_id?: string,
    @Query('audit_id') audit_id?: string,
    @Query('limit') limit?: string,
  ): Promise<AuditRecordsDto> {
    // The whole log spans every tool and agent: reading it is its own permission, not implied by deciding approvals.
    if (!ctx.approver!.audit) throw new PolicyDenied('audit_not_allowed', `Approver "${ctx.approver!.id}" may not read the audit log`);
    for (const [name, value] of Object.entries({ request_id, agent_id, audit_id })) {
      if (value !== undefined && !ID.test(value)) throw new InvalidRequest('invalid_query', `${name} is malformed`);
    }
    return { records: await this.audit.find({ request_id, agent_id, audit_id, limit: parseLimit(limit, 1000) }) };
  }
}
