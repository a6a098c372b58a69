import type { Agent, Approver, Tool } from '../config/gateway-config';
import type { ApproverDecision } from '../context/call-stages';
import type { ApproverRequest, AuthenticatedCall, RequestContext } from '../context/request-context';
import { OutcomeUnrecorded, PolicyDenied, RateLimited, ToolFailed } from '../core/errors';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import { AuditLog, AuditUnavailable } from './audit-log.service';
import type { AuditFields } from './audit-record';
import { RequestAudit } from './request-audit';

const AGENT = { id: 'agent_a', role: 'deployer' } as Agent;
const TOOL = { name: 'write_file' } as Tool;
const ORIGIN = { method: 'POST', path: '/api/tools/call', client_ip: '10.0.0.1' };

/** The recorder with a fake log (what it appends, or an outage) and fake metrics. */
function newTestAudit() {
  const appended: AuditFields[] = [];
  const log = { append: jest.fn((fields: AuditFields) => Promise.resolve(void appended.push(fields))) };
  const metrics = { toolCall: jest.fn() };
  const audit = new RequestAudit(log as unknown as AuditLog, metrics as unknown as GatewayMetrics);
  const logDown = () => log.append.mockRejectedValue(new AuditUnavailable());
  return { audit, appended, log, metrics, logDown };
}

function newCall(): AuthenticatedCall {
  return {
    auditId: 'audit_1',
    startedAt: performance.now(),
    origin: ORIGIN,
    channel: 'mcp',
    client: 'claude/1.0',
    agent: AGENT,
    envelope: { agent_id: AGENT.id, agent_version: '1.0.0', request_id: 'req_1', tool: TOOL.name, arguments: { path: 'a.txt' } },
  };
}

const CALL_NAMES = { request_id: 'req_1', agent_id: 'agent_a', agent_version: '1.0.0', tool: 'write_file', role: 'deployer' };

const approval: ApproverDecision = { approvalId: 'approv_1', approved: true, call: CALL_NAMES, arguments: { path: 'a.txt' }, argumentsSha256: 'f'.repeat(64) };

function newApproverRequest(): ApproverRequest {
  return {
    auditId: 'audit_2',
    startedAt: performance.now(),
    origin: { method: 'POST', path: '/approve', client_ip: '10.0.0.2' },
    approver: { id: 'admin' } as Approver,
  };
}

describe('RequestAudit', () => {
  it('records an allow decision with the arguments, named by the call and its door', async () => {
    const { audit, appended, metrics } = newTestAudit();
    await audit.recordDecision(newCall(), { verdict: 'allow', tool: TOOL });
    expect(appended).toEqual([
      {
        audit_id: 'audit_1',
        event: 'decision',
        method: 'POST',
        path: '/api/tools/call',
        channel: 'mcp',
        client: 'claude/1.0',
        request_id: 'req_1',
        agent_id: 'agent_a',
        agent_version: '1.0.0',
        role: 'deployer',
        tool: 'write_file',
        approver_id: undefined,
        client_ip: '10.0.0.1',
        decision: 'allow',
        arguments: { path: 'a.txt' },
      },
    ]);
    expect(metrics.toolCall).not.toHaveBeenCalled();
  });

  it('records a policy refusal as a deny decision carrying the refusal, and counts it', async () => {
    const { audit, appended, metrics } = newTestAudit();
    await audit.recordDecision(newCall(), { verdict: 'deny', refusal: new PolicyDenied('forbidden_field', 'no') });
    expect(appended).toEqual([
      expect.objectContaining({
        event: 'decision',
        decision: 'deny',
        arguments: { path: 'a.txt' },
        status: 'denied',
        reason_code: 'forbidden_field',
        http_status: 403,
        duration_ms: expect.any(Number),
      }),
    ]);
    expect(metrics.toolCall).toHaveBeenCalledWith('mcp', 'write_file', 'deny', 'denied');
  });

  it('records the outcome of a call the policy decided, counted under its verdict', async () => {
    const { audit, appended, metrics } = newTestAudit();
    const call = newCall();
    await audit.recordOutcome({ by: 'policy', call, decision: { verdict: 'pending', tool: TOOL }, mayHaveRun: true }, 202, {
      status: 'pending_approval',
      approval_id: 'approv_1',
    });
    expect(appended).toEqual([
      expect.objectContaining({ event: 'outcome', status: 'pending_approval', http_status: 202, approval_id: 'approv_1', request_id: 'req_1' }),
    ]);
    expect(metrics.toolCall).toHaveBeenCalledWith('mcp', 'write_file', 'pending', 'pending_approval');
  });

  it('records an approver decision with the stored call and the SHA-256 of what will run', async () => {
    const { audit, appended } = newTestAudit();
    await audit.recordApproval(newApproverRequest(), approval);
    expect(appended).toEqual([
      {
        audit_id: 'audit_2',
        event: 'approval',
        approval_id: 'approv_1',
        approver_id: 'admin',
        decision: 'allow',
        request_id: 'req_1',
        agent_id: 'agent_a',
        agent_version: '1.0.0',
        tool: 'write_file',
        role: 'deployer',
        arguments: { path: 'a.txt' },
        arguments_sha256: 'f'.repeat(64),
      },
    ]);
  });

  it('names an approved call’s outcome by the stored call and the approver, and does not count it as a door’s call', async () => {
    const { audit, appended, metrics } = newTestAudit();
    await audit.recordOutcome({ by: 'approver', request: newApproverRequest(), approval, mayHaveRun: true }, 200, {
      status: 'executed',
      approval_id: 'approv_1',
    });
    expect(appended).toEqual([
      expect.objectContaining({
        audit_id: 'audit_2',
        event: 'outcome',
        path: '/approve',
        agent_id: 'agent_a',
        tool: 'write_file',
        request_id: 'req_1',
        approver_id: 'admin',
        status: 'executed',
        approval_id: 'approv_1',
      }),
    ]);
    expect(appended[0]).not.toHaveProperty('channel');
    expect(metrics.toolCall).not.toHaveBeenCalled();
  });

  it('records a failed outcome and answers with the failure itself', async () => {
    const { audit, appended } = newTestAudit();
    const failure = new ToolFailed('disk full');
    const decided = { by: 'policy' as const, call: newCall(), decision: { verdict: 'allow' as const, tool: TOOL }, mayHaveRun: true };
    await expect(audit.recordFailedOutcome(decided, failure)).resolves.toBe(failure);
    expect(appended).toEqual([expect.objectContaining({ event: 'outcome', status: 'tool_error', reason_code: 'tool_error', http_status: 502 })]);
  });

  it('answers outcome_unrecorded when the audit log fails after the tool ran, never "nothing was executed"', async () => {
    const { audit, logDown } = newTestAudit();
    logDown();
    const decided = { by: 'policy' as const, call: newCall(), decision: { verdict: 'allow' as const, tool: TOOL }, mayHaveRun: true };
    await expect(audit.recordFailedOutcome(decided, new ToolFailed('x'))).resolves.toBeInstanceOf(OutcomeUnrecorded);
    await expect(audit.recordFailedOutcome(decided, new AuditUnavailable())).resolves.toBeInstanceOf(OutcomeUnrecorded);
  });

  it('answers audit_unavailable when the audit log fails and nothing ran', async () => {
    const { audit, logDown } = newTestAudit();
    logDown();
    const decided = { by: 'approver' as const, request: newApproverRequest(), approval: { ...approval, approved: false }, mayHaveRun: false };
    await expect(audit.recordFailedOutcome(decided, new PolicyDenied('path_outside_workspace', 'no'))).resolves.toBeInstanceOf(AuditUnavailable);
  });

  it('records a request refused before any decision, counting a tool call under the verdict taken but not recorded', async () => {
    const { audit, appended, metrics } = newTestAudit();
    const refusal = new RateLimited('Too many calls', 2);
    await expect(audit.recordRefusal(newCall(), refusal, 'allow')).resolves.toBe(refusal);
    expect(appended).toEqual([expect.objectContaining({ event: 'request', status: 'rate_limited', reason_code: 'rate_limited', http_status: 429 })]);
    expect(metrics.toolCall).toHaveBeenCalledWith('mcp', 'write_file', 'allow', 'rate_limited');
  });

  it('records a refusal of a request that names no tool without counting it, and answers 503 when it cannot', async () => {
    const { audit, appended, metrics, logDown } = newTestAudit();
    const ctx: RequestContext = { auditId: 'audit_3', startedAt: performance.now(), origin: ORIGIN };
    const refusal = new PolicyDenied('approver_not_allowed_for_tool', 'no');
    await audit.recordRefusal(ctx, refusal);
    expect(appended).toEqual([expect.objectContaining({ audit_id: 'audit_3', event: 'request', reason_code: 'approver_not_allowed_for_tool' })]);
    expect(metrics.toolCall).not.toHaveBeenCalled();
    logDown();
    await expect(audit.recordRefusal(ctx, refusal)).resolves.toBeInstanceOf(AuditUnavailable);
  });

  it('records a replay, counted as replayed', async () => {
    const { audit, appended, metrics } = newTestAudit();
    await audit.recordReplay(newCall(), 200);
    expect(appended).toEqual([expect.objectContaining({ event: 'replay', status: 'replayed', http_status: 200 })]);
    expect(metrics.toolCall).toHaveBeenCalledWith('mcp', 'write_file', undefined, 'replayed');
  });

  it('records another audited route’s answer as a request', async () => {
    const { audit, appended } = newTestAudit();
    await audit.recordRequest({ auditId: 'audit_4', startedAt: performance.now(), approver: { id: 'admin' } as Approver }, 200, {});
    expect(appended).toEqual([expect.objectContaining({ event: 'request', status: 'ok', http_status: 200, approver_id: 'admin' })]);
  });
});
