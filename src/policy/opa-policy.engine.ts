import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Agent, fetch } from 'undici';
import { GatewayError } from '../core/errors';
import { GatewayConfig } from '../config/gateway-config';
import { opaInput } from './opa-data';
import { PolicyDecision, PolicyEngine, PolicyInput } from './policy-engine';

export class PolicyUnavailable extends GatewayError {
  constructor(reasonCode: string, why: string) {
    super(503, 'policy_unavailable', reasonCode, `The policy engine gave no usable answer (${why}); nothing was executed`);
  }
}

const REASON_CODE = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * Asks Open Policy Agent (GATEWAY_POLICY_ENGINE=opa) through its Data API, on keep-alive connections. Fails
 * closed: no answer in time, a non-2xx, an undefined or malformed result (no boolean `allow`) →
 * 503 policy_unavailable, with the reason_code saying which.
 */
@Injectable()
export class OpaPolicyEngine extends PolicyEngine implements OnApplicationShutdown {
  private readonly pool = new Agent({ keepAliveTimeout: 30_000 });
  private readonly decisionUrl: string;

  constructor(private readonly config: GatewayConfig) {
    super();
    this.decisionUrl = `${config.policy.opaUrl}/v1/data/gateway/tools/decision`;
  }

  async decide(input: PolicyInput): Promise<PolicyDecision> {
    const signal = AbortSignal.timeout(this.config.policy.opaTimeoutMs);
    let body: unknown;
    try {
      const response = await fetch(this.decisionUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: opaInput(input) }),
        signal,
        dispatcher: this.pool,
      });
      if (!response.ok) {
        await response.body?.cancel();
        throw new PolicyUnavailable('opa_error_status', `OPA answered HTTP ${response.status}`);
      }
      body = await response.json().catch((err: unknown) => {
        if (signal.aborted) throw err;
        throw new PolicyUnavailable('opa_malformed_result', 'OPA answered something that is not JSON');
      });
    } catch (err) {
      if (err instanceof PolicyUnavailable) throw err;
      if (signal.aborted) throw new PolicyUnavailable('opa_timeout', `no answer from OPA within ${this.config.policy.opaTimeoutMs} ms`);
      throw new PolicyUnavailable('opa_unreachable', 'OPA cannot be reached');
    }
    const result = (body as { result?: unknown } | null)?.result;
    if (result === undefined) throw new PolicyUnavailable('opa_undefined_result', 'OPA has no decision for gateway.tools (is the policy loaded?)');
    // Only `allow` is required: a missing requires_approval is false, a missing reason_code says
    // what allow said. A field that is present must have its type.
    const { allow, requires_approval = false, reason_code = allow ? 'allowed' : 'denied_by_policy' } = (result ?? {}) as Record<string, unknown>;
    if (typeof allow !== 'boolean' || typeof requires_approval !== 'boolean' || typeof reason_code !== 'string' || !REASON_CODE.test(reason_code)) {
      throw new PolicyUnavailable(
        'opa_malformed_result',
        'OPA decision needs allow (boolean), and requires_approval (boolean) and reason_code (snake_case) when present',
      );
    }
    return { allow, requires_approval, reason_code };
  }

  override async ready(): Promise<boolean> {
    try {
      const response = await fetch(`${this.config.policy.opaUrl}/health`, {
        signal: AbortSignal.timeout(this.config.policy.opaTimeoutMs),
        dispatcher: this.pool,
      });
      await response.body?.cancel();
      return response.ok;
    } catch {
      return false;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    if (!this.pool.closed) await this.pool.close();
  }
}
