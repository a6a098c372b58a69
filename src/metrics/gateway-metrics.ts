import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { GatewayConfig } from '../config/gateway-config';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Prometheus metrics (GET /metrics). Labels are bounded sets only: registered tool names (anything
 * else is "unregistered"), decisions, statuses. No agent argument ever becomes a label.
 */
@Injectable()
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly calls = new Counter({
    name: 'gateway_tool_calls_total',
    help: 'Tool calls by door (rest, mcp), tool, decision and resulting status',
    labelNames: ['channel', 'tool', 'decision', 'status'] as const,
    registers: [this.registry],
  });
  private readonly decisionSeconds = new Histogram({
    name: 'gateway_policy_decision_seconds',
    help: 'Time the policy engine took to decide',
    labelNames: ['engine'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly executionSeconds = new Histogram({
    name: 'gateway_tool_execution_seconds',
    help: 'Time a tool took to run',
    labelNames: ['tool'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly auditFailures = new Counter({
    name: 'gateway_audit_write_failures_total',
    help: 'Audit records that could not be written (each refused its request)',
    registers: [this.registry],
  });
  private readonly rateLimited = new Counter({
    name: 'gateway_rate_limited_total',
    help: 'Requests refused with 429, by limit',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  private readonly upstreamChanges = new Counter({
    name: 'gateway_upstream_tool_changes_total',
    help: 'Pinned upstream MCP tools seen changed, vanished or back, by mcp_servers name',
    labelNames: ['server'] as const,
    registers: [this.registry],
  });
  private readonly configReloadFailures = new Counter({
    name: 'gateway_config_reload_failures_total',
    help: 'Configuration reloads refused (the running configuration was kept)',
    registers: [this.registry],
  });
  private readonly configReloadSuccess = new Gauge({
    name: 'gateway_config_last_reload_success_timestamp_seconds',
    help: 'When the running configuration was loaded (start, or the last reload that was applied)',
    registers: [this.registry],
  });
  private readonly configReloadOk = new Gauge({
    name: 'gateway_config_last_reload_successful',
    help: '1 when the last configuration reload (or the start) was applied, 0 when it was refused',
    registers: [this.registry],
  });
  private pendingSource: () => Promise<number> = async () => 0;
  private auditSinkLagSource: () => Promise<ReadonlyMap<string, number>> = async () => new Map();

  constructor(private readonly config: GatewayConfig) {
    collectDefaultMetrics({ register: this.registry });
    this.configReloaded(true);
    const pending = () => this.pendingSource();
    new Gauge({
      name: 'gateway_pending_approvals',
      help: 'Approvals waiting for a human',
      registers: [this.registry],
      async collect() {
        this.set(await pending());
      },
    });
    const sinkLag = () => this.auditSinkLagSource();
    new Gauge({
      name: 'gateway_audit_sink_lag_records',
      help: 'Audit records written but not yet acknowledged by the sink, by audit_sinks name',
      labelNames: ['sink'] as const,
      registers: [this.registry],
      async collect() {
        // The audit store unreachable: the last values stand.
        const lags = await sinkLag().catch(() => new Map<string, number>());
        for (const [sink, lag] of lags) this.set({ sink }, lag);
      },
    });
  }

  /** Where the audit sinks' lag gauge reads its values (the audit export sets it). */
  measureAuditSinkLagWith(source: () => Promise<ReadonlyMap<string, number>>): void {
    this.auditSinkLagSource = source;
  }

  /** Where the pending-approvals gauge reads its value (the approval module sets it). */
  countPendingWith(source: () => Promise<number>): void {
    this.pendingSource = source;
  }

  toolCall(channel: 'rest' | 'mcp', tool: string | undefined, decision: string | undefined, status: string): void {
    this.calls.inc({ channel, tool: this.toolLabel(tool), decision: decision ?? 'none', status });
  }

  policyDecision(seconds: number): void {
    this.decisionSeconds.observe({ engine: this.config.policy.engine }, seconds);
  }

  toolExecution(tool: string, seconds: number): void {
    this.executionSeconds.observe({ tool: this.toolLabel(tool) }, seconds);
  }

  auditWriteFailed(records: number): void {
    this.auditFailures.inc(records);
  }

  refused(limit: 'agent' | 'tool' | 'address'): void {
    this.rateLimited.inc({ limit });
  }

  /** A configuration reload applied (`ok`) or refused. */
  configReloaded(ok: boolean): void {
    this.configReloadOk.set(ok ? 1 : 0);
    if (ok) this.configReloadSuccess.setToCurrentTime();
    else this.configReloadFailures.inc();
  }

  /** `server` is a configured mcp_servers name (a bounded set). */
  upstreamToolChanged(server: string): void {
    this.upstreamChanges.inc({ server });
  }

  private toolLabel(tool: string | undefined): string {
    return tool !== undefined && this.config.tools.has(tool) ? tool : 'unregistered';
  }
}
