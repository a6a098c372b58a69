import type { ApprovalRecord } from '../approval/approval.repository';
import type { ApprovalService } from '../approval/approval.service';
import { ClaimLapsed, OutcomeNotStored, TooManyPending } from '../approval/approval-errors';
import { AuditUnavailable } from '../audit/audit-log.service';
import type { RequestAudit } from '../audit/request-audit';
import { Idempotency, StoredReplay } from '../auth/idempotency.service';
import type { Agent, Approver, Tool } from '../config/gateway-config';
import type { ApproverDecision, DecidedCall } from '../context/call-stages';
import type { ApproverRequest, AuthenticatedCall } from '../context/request-context';
import { ArgumentsInvalid, GatewayError, PolicyDenied, RateLimited, ToolFailed } from '../core/errors';
import { type ExecutorService, ToolCancelled } from '../executor/executor.service';
import type { PolicyService } from '../policy/policy.service';
import type { Redactor } from '../redaction/redactor';
import type { AgentLimiter } from '../throttle/agent-limiter';
import { BuiltinTool, ToolCallPipeline } from './tool-call.pipeline';

const AGENT = { id: 'agent_a', role: 'deployer' } as Agent;
const TOOL = { name: 'write_file', timeout_ms: 1000 } as Tool;
const ARGS = { path: 'a.txt', content: 'x' };

/** The pipeline with every collaborator faked: each returns what an unremarkable call would get. */
function newTestPipeline() {
  const idempotency = { claim: jest.fn().mockResolvedValue(undefined), settle: jest.fn().mockResolvedValue(undefined) };
  const limiter = { spend: jest.fn().mockResolvedValue(undefined) };
  const policy = { evaluate: jest.fn().mockResolvedValue({ tool: TOOL, requiresApproval: false }) };
  const audit = {
    recordDecision: jest.fn().mockResolvedValue(undefined),
    recordApproval: jest.fn().mockResolvedValue(undefined),
    recordOutcome: jest.fn().mockResolvedValue(undefined),
    recordFailedOutcome: jest.fn((_decided: DecidedCall, error: GatewayError) => Promise.resolve(error)),
    recordRefusal: jest.fn((_ctx: unknown, error: GatewayError) => Promise.resolve(error)),
    recordReplay: jest.fn().mockResolvedValue(undefined),
  };
  const approvals = {
    submit: jest.fn().mockResolvedValue({ id: 'approv_1', expires_at: Date.UTC(2030, 0, 1) }),
    decisionOn: jest.fn((record: ApprovalRecord): ApproverDecision => ({
      approvalId: record.id,
      approved: record.status === 'approved',
      call: { request_id: 'req_1', agent_id: AGENT.id, agent_version: '1.0.0', role: AGENT.role, tool: TOOL.name },
      arguments: ARGS,
      argumentsSha256: 'sha',
    })),
    undecide: jest.fn().mockResolvedValue(undefined),
    storedCall: jest.fn(() => ({ agent: AGENT, envelope: envelope() })),
    renewClaim: jest.fn().mockResolvedValue(undefined),
    notRun: jest.fn().mockResolvedValue(undefined),
    storeOutcome: jest.fn().mockResolvedValue(true),
  };
  const executor = { execute: jest.fn().mockResolvedValue({ path: 'a.txt', bytes: 1 }) };
  const redactor = { redactString: (text: string) => text, redact: <T>(value: T) => value };
  const pipeline = new ToolCallPipeline(
    idempotency as unknown as Idempotency,
    limiter as unknown as AgentLimiter,
    policy as unknown as PolicyService,
    audit as unknown as RequestAudit,
    approvals as unknown as ApprovalService,
    executor as unknown as ExecutorService,
    redactor as unknown as Redactor,
  );
  return { pipeline, idempotency, limiter, policy, audit, approvals, executor };
}

function envelope() {
  return { agent_id: AGENT.id, agent_version: '1.0.0', request_id: 'req_1', tool: TOOL.name, arguments: ARGS };
}

function newCall(): AuthenticatedCall {
  return { auditId: 'audit_1', startedAt: 0, channel: 'rest', agent: AGENT, envelope: envelope() };
}

function newApproverRequest(): ApproverRequest {
  return { auditId: 'audit_2', startedAt: 0, approver: { id: 'admin' } as Approver };
}

function claimed(status: 'approved' | 'rejected'): ApprovalRecord {
  return { id: 'approv_1', status } as ApprovalRecord;
}

describe('ToolCallPipeline.run', () => {
  it('records the allow decision before the tool runs, then the executed outcome, and keeps the answer for replays', async () => {
    const { pipeline, audit, executor, idempotency } = newTestPipeline();
    const call = newCall();
    const answer = await pipeline.run(call, 'hash');
    expect(answer).toEqual({
      httpStatus: 200,
      body: { success: true, status: 'executed', result: { path: 'a.txt', bytes: 1 }, audit_id: 'audit_1', request_id: 'req_1' },
    });
    expect(idempotency.claim).toHaveBeenCalledWith(call, 'hash');
    expect(audit.recordDecision).toHaveBeenCalledWith(call, { verdict: 'allow', tool: TOOL });
    expect(audit.recordDecision.mock.invocationCallOrder[0]).toBeLessThan(executor.execute.mock.invocationCallOrder[0]);
    // No observer: the door gave none.
    expect(executor.execute).toHaveBeenCalledWith(TOOL, ARGS, undefined);
    expect(audit.recordOutcome).toHaveBeenCalledWith({ by: 'policy', call, decision: { verdict: 'allow', tool: TOOL }, mayHaveRun: true }, 200, answer.body);
    expect(idempotency.settle).toHaveBeenCalledWith(call, 200, answer.body, true);
  });

  it('records a policy refusal as the deny decision, runs nothing, and frees nothing it did not take', async () => {
    const { pipeline, policy, audit, executor, idempotency } = newTestPipeline();
    const refusal = new PolicyDenied('path_outside_workspace', 'Path is outside the workspace');
    policy.evaluate.mockRejectedValue(refusal);
    const call = newCall();
    const answer = await pipeline.run(call, 'hash');
    expect(answer).toMatchObject({ httpStatus: 403, body: { success: false, status: 'denied', reason_code: 'path_outside_workspace', request_id: 'req_1' } });
    expect(audit.recordDecision).toHaveBeenCalledWith(call, { verdict: 'deny', refusal });
    expect(audit.recordRefusal).not.toHaveBeenCalled();
    expect(audit.recordOutcome).not.toHaveBeenCalled();
    expect(executor.execute).not.toHaveBeenCalled();
    expect(idempotency.settle).toHaveBeenCalledWith(call, 403, answer.body, false);
  });

  it('answers 503 audit_unavailable when a deny cannot be recorded', async () => {
    const { pipeline, policy, audit } = newTestPipeline();
    policy.evaluate.mockRejectedValue(new PolicyDenied('forbidden_field', 'no'));
    audit.recordDecision.mockRejectedValue(new AuditUnavailable());
    const answer = await pipeline.run(newCall(), 'hash');
    expect(answer).toMatchObject({ httpStatus: 503, body: { reason_code: 'audit_unavailable' } });
    expect(audit.recordRefusal).not.toHaveBeenCalled();
  });

  it('records a policy engine outage as a refused request, not a decision', async () => {
    const { pipeline, policy, audit } = newTestPipeline();
    const outage = new GatewayError(503, 'policy_unavailable', 'policy_unavailable', 'The policy engine cannot be reached');
    policy.evaluate.mockRejectedValue(outage);
    const call = newCall();
    const answer = await pipeline.run(call, 'hash');
    expect(answer.httpStatus).toBe(503);
    expect(audit.recordDecision).not.toHaveBeenCalled();
    expect(audit.recordRefusal).toHaveBeenCalledWith(call, outage, undefined);
  });

  it('runs nothing when the allow decision cannot be recorded, and names the untaken-on-record verdict', async () => {
    const { pipeline, audit, executor, idempotency } = newTestPipeline();
    audit.recordDecision.mockRejectedValue(new AuditUnavailable());
    const call = newCall();
    const answer = await pipeline.run(call, 'hash');
    expect(answer).toMatchObject({ httpStatus: 503, body: { reason_code: 'audit_unavailable' } });
    expect(audit.recordRefusal).toHaveBeenCalledWith(call, expect.any(AuditUnavailable), 'allow');
    expect(executor.execute).not.toHaveBeenCalled();
    expect(idempotency.settle).toHaveBeenCalledWith(call, 503, answer.body, false);
  });

  it('refuses before any decision when the agent is over its limit', async () => {
    const { pipeline, limiter, idempotency, policy, audit } = newTestPipeline();
    limiter.spend.mockRejectedValue(new RateLimited('Too many calls', 3));
    const answer = await pipeline.run(newCall(), 'hash');
    expect(answer).toMatchObject({ httpStatus: 429, headers: { 'Retry-After': '3' } });
    expect(idempotency.claim).not.toHaveBeenCalled();
    expect(policy.evaluate).not.toHaveBeenCalled();
    expect(audit.recordRefusal).toHaveBeenCalledTimes(1);
  });

  it('answers a replay with the stored answer, recorded as a replay, without deciding or running', async () => {
    const { pipeline, idempotency, limiter, policy, executor, audit } = newTestPipeline();
    idempotency.claim.mockRejectedValue(new StoredReplay(202, { status: 'pending_approval' }));
    const call = newCall();
    const answer = await pipeline.run(call, 'hash');
    expect(answer).toEqual({ httpStatus: 202, body: { status: 'pending_approval' }, replayed: true });
    expect(limiter.spend).toHaveBeenCalled();
    expect(audit.recordReplay).toHaveBeenCalledWith(call, 202);
    expect(policy.evaluate).not.toHaveBeenCalled();
    expect(executor.execute).not.toHaveBeenCalled();
  });

  it('takes no replay key for a call the door named itself', async () => {
    const { pipeline, idempotency } = newTestPipeline();
    await pipeline.run(newCall(), undefined);
    expect(idempotency.claim).not.toHaveBeenCalled();
  });

  it('files an approval for a pending decision: 202, recorded as pending, kept for replays', async () => {
    const { pipeline, policy, approvals, executor, audit, idempotency } = newTestPipeline();
    policy.evaluate.mockResolvedValue({ tool: TOOL, requiresApproval: true });
    const call = newCall();
    const answer = await pipeline.run(call, 'hash');
    expect(answer).toEqual({
      httpStatus: 202,
      body: {
        success: false,
        status: 'pending_approval',
        approval_id: 'approv_1',
        expires_at: '2030-01-01T00:00:00.000Z',
        error: 'Human approval required',
        audit_id: 'audit_1',
        request_id: 'req_1',
      },
    });
    expect(approvals.submit).toHaveBeenCalledWith(AGENT, call.envelope, 'audit_1');
    expect(executor.execute).not.toHaveBeenCalled();
    expect(audit.recordDecision).toHaveBeenCalledWith(call, { verdict: 'pending', tool: TOOL });
    expect(audit.recordOutcome).toHaveBeenCalledWith(expect.objectContaining({ mayHaveRun: true }), 202, answer.body);
    expect(idempotency.settle).toHaveBeenCalledWith(call, 202, answer.body, true);
  });

  it('records an approval that could not be filed as the outcome, and lets a retry be judged afresh', async () => {
    const { pipeline, policy, approvals, audit, idempotency } = newTestPipeline();
    policy.evaluate.mockResolvedValue({ tool: TOOL, requiresApproval: true });
    approvals.submit.mockRejectedValue(new TooManyPending(5));
    const call = newCall();
    const answer = await pipeline.run(call, 'hash');
    expect(answer).toMatchObject({ httpStatus: 429, body: { reason_code: 'too_many_pending' } });
    expect(audit.recordFailedOutcome).toHaveBeenCalledWith(expect.objectContaining({ by: 'policy', mayHaveRun: false }), expect.any(TooManyPending));
    expect(idempotency.settle).toHaveBeenCalledWith(call, 429, answer.body, false);
  });

  it("hands the door's observer (cancellation, progress) to the tool it runs, and records a cancelled call as its outcome", async () => {
    const { pipeline, executor, audit, idempotency } = newTestPipeline();
    const observer = { signal: new AbortController().signal, onProgress: jest.fn() };
    executor.execute.mockRejectedValue(new ToolCancelled());
    const call = newCall();
    const answer = await pipeline.run(call, 'hash', undefined, observer);
    expect(executor.execute).toHaveBeenCalledWith(TOOL, ARGS, observer);
    expect(answer).toMatchObject({ httpStatus: 499, body: { status: 'cancelled', reason_code: 'cancelled' } });
    expect(audit.recordFailedOutcome).toHaveBeenCalledWith(expect.objectContaining({ mayHaveRun: true }), expect.any(ToolCancelled));
    expect(idempotency.settle).toHaveBeenCalledWith(call, 499, answer.body, true);
  });

  it('records a tool error as the outcome of a call that ran', async () => {
    const { pipeline, executor, audit, idempotency } = newTestPipeline();
    executor.execute.mockRejectedValue(new ToolFailed('disk full'));
    const call = newCall();
    const answer = await pipeline.run(call, 'hash');
    expect(answer).toMatchObject({ httpStatus: 502, body: { status: 'tool_error', error: 'disk full' } });
    expect(audit.recordFailedOutcome).toHaveBeenCalledWith(expect.objectContaining({ mayHaveRun: true }), expect.any(ToolFailed));
    expect(idempotency.settle).toHaveBeenCalledWith(call, 502, answer.body, true);
  });

  it('hands an outcome record that fails after the tool ran to the recorder as a failure of a call that may have run', async () => {
    const { pipeline, audit } = newTestPipeline();
    audit.recordOutcome.mockRejectedValue(new AuditUnavailable());
    audit.recordFailedOutcome.mockImplementation((decided, error) =>
      Promise.resolve(decided.mayHaveRun ? new GatewayError(503, 'audit_unavailable', 'outcome_unrecorded', 'may have run') : error),
    );
    const answer = await pipeline.run(newCall(), 'hash');
    expect(answer).toMatchObject({ httpStatus: 503, body: { reason_code: 'outcome_unrecorded' } });
    expect(audit.recordFailedOutcome).toHaveBeenCalledWith(expect.objectContaining({ mayHaveRun: true }), expect.any(AuditUnavailable));
  });

  it('never throws: an unexpected error is a bare 500 on record', async () => {
    const { pipeline, limiter, audit } = newTestPipeline();
    limiter.spend.mockRejectedValue(new TypeError('boom /srv/secret/path'));
    const answer = await pipeline.run(newCall(), 'hash');
    expect(answer).toMatchObject({ httpStatus: 500, body: { reason_code: 'internal_error', error: 'Internal error' } });
    expect(audit.recordRefusal).toHaveBeenCalled();
  });

  describe('a built-in tool', () => {
    const builtin = (run = jest.fn().mockResolvedValue({ status: 'pending' })): BuiltinTool & { run: jest.Mock } => ({
      validate: (args) => {
        if (typeof args.approval_id !== 'string') throw new ArgumentsInvalid([{ instancePath: '/approval_id' }]);
      },
      run,
    });

    it('is decided by its own schema (no policy engine) and answered without "may have run"', async () => {
      const { pipeline, policy, audit, idempotency } = newTestPipeline();
      const call = { ...newCall(), envelope: { ...envelope(), tool: 'approval_status', arguments: { approval_id: 'approv_1' } } };
      const tool = builtin();
      const answer = await pipeline.run(call, 'hash', tool);
      expect(answer).toMatchObject({ httpStatus: 200, body: { status: 'executed', result: { status: 'pending' } } });
      expect(tool.run).toHaveBeenCalledWith(call);
      expect(policy.evaluate).not.toHaveBeenCalled();
      expect(audit.recordDecision).toHaveBeenCalledWith(call, { verdict: 'allow' });
      expect(idempotency.settle).toHaveBeenCalledWith(call, 200, answer.body, false);
    });

    it('records arguments its schema refuses as a deny decision', async () => {
      const { pipeline, audit } = newTestPipeline();
      const call = { ...newCall(), envelope: { ...envelope(), tool: 'approval_status', arguments: {} } };
      const tool = builtin();
      const answer = await pipeline.run(call, 'hash', tool);
      expect(answer).toMatchObject({ httpStatus: 400, body: { status: 'invalid_arguments' } });
      expect(audit.recordDecision).toHaveBeenCalledWith(call, { verdict: 'deny', refusal: expect.any(ArgumentsInvalid) });
      expect(tool.run).not.toHaveBeenCalled();
    });
  });
});

describe('ToolCallPipeline.runApproved', () => {
  it('records the approver decision, then decides again, runs the stored call once, stores and records the outcome', async () => {
    const { pipeline, audit, approvals, policy, executor } = newTestPipeline();
    const request = newApproverRequest();
    const record = claimed('approved');
    const answer = await pipeline.runApproved(request, record);
    expect(answer).toEqual({
      httpStatus: 200,
      body: { success: true, status: 'executed', approval_id: 'approv_1', audit_id: 'audit_2', result: { path: 'a.txt', bytes: 1 } },
    });
    const approval = approvals.decisionOn.mock.results[0].value as ApproverDecision;
    expect(audit.recordApproval).toHaveBeenCalledWith(request, approval);
    expect(policy.evaluate).toHaveBeenCalledWith(AGENT, envelope());
    expect(approvals.renewClaim).toHaveBeenCalledWith(record, TOOL);
    expect(audit.recordApproval.mock.invocationCallOrder[0]).toBeLessThan(executor.execute.mock.invocationCallOrder[0]);
    expect(executor.execute).toHaveBeenCalledTimes(1);
    expect(approvals.storeOutcome).toHaveBeenCalledWith(record, { result: { path: 'a.txt', bytes: 1 } });
    expect(audit.recordOutcome).toHaveBeenCalledWith({ by: 'approver', request, approval, mayHaveRun: true }, 200, answer.body);
  });

  it('runs nothing and leaves the approval pending again when the approver decision cannot be recorded', async () => {
    const { pipeline, audit, approvals, executor } = newTestPipeline();
    audit.recordApproval.mockRejectedValue(new AuditUnavailable());
    const request = newApproverRequest();
    const record = claimed('approved');
    const answer = await pipeline.runApproved(request, record);
    expect(answer).toMatchObject({ httpStatus: 503, body: { reason_code: 'audit_unavailable' } });
    expect(answer.body).not.toHaveProperty('request_id');
    expect(approvals.undecide).toHaveBeenCalledWith(record);
    expect(audit.recordRefusal).toHaveBeenCalledWith(request, expect.any(AuditUnavailable), undefined);
    expect(executor.execute).not.toHaveBeenCalled();
  });

  it('answers a rejection without deciding or running anything', async () => {
    const { pipeline, audit, policy, executor } = newTestPipeline();
    const request = newApproverRequest();
    const answer = await pipeline.runApproved(request, claimed('rejected'));
    expect(answer).toEqual({ httpStatus: 200, body: { success: false, status: 'rejected', approval_id: 'approv_1', audit_id: 'audit_2' } });
    expect(audit.recordOutcome).toHaveBeenCalledWith(expect.objectContaining({ by: 'approver', mayHaveRun: false }), 200, answer.body);
    expect(policy.evaluate).not.toHaveBeenCalled();
    expect(executor.execute).not.toHaveBeenCalled();
  });

  it('settles a call the current policy refuses as not run, recorded as its failed outcome', async () => {
    const { pipeline, policy, approvals, audit, executor } = newTestPipeline();
    const refusal = new PolicyDenied('path_outside_workspace', 'Path is outside the workspace');
    policy.evaluate.mockRejectedValue(refusal);
    const record = claimed('approved');
    const answer = await pipeline.runApproved(newApproverRequest(), record);
    expect(answer).toMatchObject({ httpStatus: 403, body: { reason_code: 'path_outside_workspace' } });
    expect(approvals.notRun).toHaveBeenCalledWith(record, refusal);
    expect(audit.recordFailedOutcome).toHaveBeenCalledWith(expect.objectContaining({ by: 'approver', mayHaveRun: false }), refusal);
    expect(audit.recordDecision).not.toHaveBeenCalled();
    expect(executor.execute).not.toHaveBeenCalled();
  });

  it('runs nothing when the claim lapsed before the run', async () => {
    const { pipeline, approvals, executor } = newTestPipeline();
    approvals.renewClaim.mockRejectedValue(new ClaimLapsed());
    const record = claimed('approved');
    const answer = await pipeline.runApproved(newApproverRequest(), record);
    expect(answer).toMatchObject({ httpStatus: 409, body: { reason_code: 'claim_lapsed' } });
    expect(approvals.notRun).toHaveBeenCalledWith(record, expect.any(ClaimLapsed));
    expect(executor.execute).not.toHaveBeenCalled();
  });

  it('stores a tool error with the approval and records it as a failure of a call that ran', async () => {
    const { pipeline, executor, approvals, audit } = newTestPipeline();
    const failure = new ToolFailed('no such file');
    executor.execute.mockRejectedValue(failure);
    const record = claimed('approved');
    const answer = await pipeline.runApproved(newApproverRequest(), record);
    expect(answer).toMatchObject({ httpStatus: 502, body: { status: 'tool_error' } });
    expect(approvals.storeOutcome).toHaveBeenCalledWith(record, { error: failure });
    expect(audit.recordFailedOutcome).toHaveBeenCalledWith(expect.objectContaining({ mayHaveRun: true }), failure);
  });

  it('answers 503 outcome_unrecorded (database_unavailable) when the outcome cannot be stored after the run', async () => {
    const { pipeline, approvals, audit } = newTestPipeline();
    approvals.storeOutcome.mockResolvedValue(false);
    const answer = await pipeline.runApproved(newApproverRequest(), claimed('approved'));
    expect(answer).toMatchObject({ httpStatus: 503, body: { status: 'database_unavailable', reason_code: 'outcome_unrecorded' } });
    expect(audit.recordFailedOutcome).toHaveBeenCalledWith(expect.objectContaining({ mayHaveRun: true }), expect.any(OutcomeNotStored));
    expect(audit.recordOutcome).not.toHaveBeenCalled();
  });
});
