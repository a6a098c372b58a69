import { Logger } from '@nestjs/common';
import type { Agent, Approver, GatewayConfig, Tool } from '../config/gateway-config';
import { sha256Hex } from '../core/hashing';
import { GatewayError, NotFound, PolicyDenied, ToolFailed } from '../core/errors';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { Redactor } from '../redaction/redactor';
import { AlreadyDecided, ApprovalExpired, ClaimLapsed, EnvelopeMismatch, TooManyPending } from './approval-errors';
import type { ApprovalWebhook } from './approval-webhook';
import { ApprovalRecord, CLAIM_LEASE_MARGIN_MS } from './approval.repository';
import { argumentsDigest, ApprovalService } from './approval.service';

const AGENT = { id: 'agent_a', role: 'deployer' } as Agent;
const TOOL = { name: 'write_file', timeout_ms: 1000 } as Tool;
const ADMIN = { id: 'admin' } as Approver;
const ENVELOPE = { agent_id: 'agent_a', agent_version: '1.0.0', request_id: 'req_1', tool: 'write_file', arguments: { path: 'a.txt', content: 'x' } };

function stored(overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  const envelope = JSON.stringify(ENVELOPE);
  return {
    id: 'approv_1',
    status: 'pending',
    agent_id: 'agent_a',
    agent_version: '1.0.0',
    role: 'deployer',
    tool: 'write_file',
    request_id: 'req_1',
    envelope,
    envelope_sha256: sha256Hex(envelope),
    audit_id: 'audit_1',
    created_at: Date.now(),
    expires_at: Date.now() + 60_000,
    decided_by: null,
    decided_at: null,
    comment: null,
    result: null,
    error: null,
    claimed_by: null,
    claimed_at: null,
    lease_until: null,
    ...overrides,
  };
}

/** The service with every collaborator faked: a repository holding one pending approval. */
function newTestService() {
  const repository = {
    insertPending: jest.fn().mockResolvedValue(true),
    get: jest.fn((): Promise<ApprovalRecord | undefined> => Promise.resolve(stored())),
    list: jest.fn(),
    decide: jest.fn((_id: string, decision: { approved: boolean }): Promise<ApprovalRecord | undefined> =>
      Promise.resolve(stored({ status: decision.approved ? 'approved' : 'rejected', decided_by: 'admin' })),
    ),
    renewClaim: jest.fn().mockResolvedValue(true),
    undecide: jest.fn().mockResolvedValue(undefined),
    complete: jest.fn().mockResolvedValue(undefined),
    expire: jest.fn().mockResolvedValue(undefined),
    countPending: jest.fn().mockResolvedValue(0),
    purge: jest.fn().mockResolvedValue(0),
    failInterrupted: jest.fn().mockResolvedValue(0),
    withdraw: jest.fn(),
  };
  const config = {
    settings: { approval_ttl_s: 60, max_pending_approvals_per_agent: 2, approval_retention_s: 3600 },
    tools: new Map([['write_file', TOOL]]),
    agents: new Map([['agent_a', AGENT]]),
  };
  const webhook = { announce: jest.fn() };
  const metrics = { countPendingWith: jest.fn() };
  const redactor = { redact: <T>(value: T) => value, redactString: (text: string) => text };
  const service = new ApprovalService(
    config as unknown as GatewayConfig,
    repository,
    redactor as unknown as Redactor,
    metrics as unknown as GatewayMetrics,
    webhook as unknown as ApprovalWebhook,
  );
  return { service, repository, webhook, config };
}

describe('ApprovalService', () => {
  beforeAll(() => Logger.overrideLogger(false));

  describe('submit', () => {
    it('stores the verified envelope with its SHA-256 and announces it', async () => {
      const { service, repository, webhook } = newTestService();
      const record = await service.submit(AGENT, ENVELOPE, 'audit_1');
      expect(record).toMatchObject({ status: 'pending', agent_id: 'agent_a', role: 'deployer', tool: 'write_file', request_id: 'req_1', audit_id: 'audit_1' });
      expect(record.envelope_sha256).toBe(sha256Hex(record.envelope));
      expect(repository.insertPending).toHaveBeenCalledWith(expect.objectContaining({ id: record.id }), 2);
      expect(webhook.announce).toHaveBeenCalledWith(expect.objectContaining({ id: record.id }));
    });

    it('refuses an agent holding max_pending_approvals_per_agent with 429 too_many_pending, announcing nothing', async () => {
      const { service, repository, webhook } = newTestService();
      repository.insertPending.mockResolvedValue(false);
      await expect(service.submit(AGENT, ENVELOPE, 'audit_1')).rejects.toThrow(TooManyPending);
      expect(webhook.announce).not.toHaveBeenCalled();
    });
  });

  describe('claim', () => {
    it('claims a pending approval for an approver, with a lease covering the tool’s timeout', async () => {
      const { service, repository } = newTestService();
      const before = Date.now();
      const claimed = await service.claim(ADMIN, { approval_id: 'approv_1', approved: true, comment: 'ok' });
      expect(claimed.status).toBe('approved');
      const [, decision] = repository.decide.mock.calls[0] as unknown as [
        string,
        { approverId: string; approved: boolean; comment: string; leaseUntil: number; now: number },
      ];
      expect(decision).toMatchObject({ approverId: 'admin', approved: true, comment: 'ok' });
      expect(decision.leaseUntil - decision.now).toBe(TOOL.timeout_ms + CLAIM_LEASE_MARGIN_MS);
      expect(decision.now).toBeGreaterThanOrEqual(before);
    });

    it('answers 404 for an unknown approval and 403 to an approver limited to other tools', async () => {
      const { service, repository } = newTestService();
      await expect(service.claim({ ...ADMIN, tools: ['read_file'] }, { approval_id: 'approv_1', approved: true })).rejects.toMatchObject({
        reasonCode: 'approver_not_allowed_for_tool',
      });
      repository.get.mockResolvedValue(undefined);
      await expect(service.claim(ADMIN, { approval_id: 'nope', approved: true })).rejects.toThrow(NotFound);
      expect(repository.decide).not.toHaveBeenCalled();
    });

    it('answers 410 expired for an approval past its expiry, and 409 already_decided for one decided first', async () => {
      const { service, repository } = newTestService();
      repository.decide.mockResolvedValue(undefined);
      repository.get.mockResolvedValueOnce(stored()).mockResolvedValueOnce(stored({ expires_at: Date.now() - 1 }));
      await expect(service.claim(ADMIN, { approval_id: 'approv_1', approved: true })).rejects.toThrow(ApprovalExpired);
      expect(repository.expire).toHaveBeenCalled();
      repository.get.mockResolvedValueOnce(stored()).mockResolvedValueOnce(stored({ status: 'executed' }));
      await expect(service.claim(ADMIN, { approval_id: 'approv_1', approved: true })).rejects.toThrow(new AlreadyDecided('executed'));
    });
  });

  it('shows the approver decision as its record names it: the stored call and the digest of what will run', () => {
    const { service } = newTestService();
    expect(service.decisionOn(stored({ status: 'approved' }))).toEqual({
      approvalId: 'approv_1',
      approved: true,
      call: { request_id: 'req_1', agent_id: 'agent_a', agent_version: '1.0.0', role: 'deployer', tool: 'write_file' },
      arguments: ENVELOPE.arguments,
      argumentsSha256: argumentsDigest(ENVELOPE.arguments).sha256,
    });
  });

  describe('storedCall', () => {
    it('gives the stored envelope and its configured agent', () => {
      const { service } = newTestService();
      expect(service.storedCall(stored())).toEqual({ agent: AGENT, envelope: ENVELOPE });
    });

    it('refuses an envelope changed since it was stored, and an agent no longer configured', () => {
      const { service } = newTestService();
      expect(() => service.storedCall(stored({ envelope: JSON.stringify({ ...ENVELOPE, arguments: { path: '/etc/passwd' } }) }))).toThrow(EnvelopeMismatch);
      expect(() => service.storedCall(stored({ agent_id: 'agent_gone' }))).toThrow(
        new PolicyDenied('unknown_agent', 'The agent that asked is no longer configured'),
      );
    });
  });

  it('refuses to run a call whose claim lapsed (409 claim_lapsed)', async () => {
    const { service, repository } = newTestService();
    await expect(service.renewClaim(stored(), TOOL)).resolves.toBeUndefined();
    repository.renewClaim.mockResolvedValue(false);
    await expect(service.renewClaim(stored(), TOOL)).rejects.toThrow(ClaimLapsed);
  });

  describe('notRun', () => {
    it('leaves the approval pending after an outage (503), to be approved again', async () => {
      const { service, repository } = newTestService();
      await service.notRun(stored(), new GatewayError(503, 'policy_unavailable', 'policy_unavailable', 'down'));
      expect(repository.undecide).toHaveBeenCalledWith('approv_1');
      expect(repository.complete).not.toHaveBeenCalled();
    });

    it('makes a refusal final: failed, with the error the approver was answered', async () => {
      const { service, repository } = newTestService();
      await service.notRun(stored(), new PolicyDenied('path_outside_workspace', 'Path is outside the workspace'));
      expect(repository.complete).toHaveBeenCalledWith('approv_1', {
        error: { http_status: 403, status: 'denied', reason_code: 'path_outside_workspace', error: 'Path is outside the workspace' },
      });
      expect(repository.undecide).not.toHaveBeenCalled();
    });

    it('stores an unexpected error as a bare internal_error', async () => {
      const { service, repository } = newTestService();
      await service.notRun(stored(), new TypeError('at /srv/gateway/x.js'));
      expect(repository.complete).toHaveBeenCalledWith('approv_1', {
        error: { http_status: 500, status: 'internal_error', reason_code: 'internal_error', error: 'Internal error' },
      });
    });
  });

  describe('storeOutcome', () => {
    it('stores the result, or the error, of the call that ran', async () => {
      const { service, repository } = newTestService();
      await expect(service.storeOutcome(stored(), { result: { bytes: 1 } })).resolves.toBe(true);
      expect(repository.complete).toHaveBeenLastCalledWith('approv_1', { result: { bytes: 1 } });
      await expect(service.storeOutcome(stored(), { error: new ToolFailed('disk full') })).resolves.toBe(true);
      expect(repository.complete).toHaveBeenLastCalledWith('approv_1', {
        error: { http_status: 502, status: 'tool_error', reason_code: 'tool_error', error: 'disk full' },
      });
    });

    it('says false, without throwing, when the store refuses the outcome of a call that ran', async () => {
      const { service, repository } = newTestService();
      repository.complete.mockRejectedValue(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' }));
      await expect(service.storeOutcome(stored(), { result: {} })).resolves.toBe(false);
    });
  });
});
