import { Injectable } from '@nestjs/common';
import { ArgumentsInvalid, PolicyDenied } from '../core/errors';
import type { ToolCallEnvelope } from '../context/request-context';
import type { Agent, Tool } from '../config/gateway-config';
import { ExecutorService } from '../executor/executor.service';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { argumentErrors } from '../registry/argument-errors';
import { ToolRegistry } from '../registry/tool-registry';
import { PolicyEngine } from './policy-engine';

const DENY_TEXT: Record<string, (tool: string, role: string) => string> = {
  tool_not_registered: (tool) => `Tool "${tool}" is not registered`,
  agent_version_not_allowed: () => 'This agent_version is not allowed for the agent',
  tool_not_allowed_for_role: (tool, role) => `Role "${role}" may not use tool "${tool}"`,
  forbidden_field: () => 'Arguments contain a forbidden field',
};

export interface AllowedCall {
  tool: Tool;
  requiresApproval: boolean;
}

/** Rows 7–12 of the order of checks (README), in order: the engine's decision, then schema, then the tool's own guard. */
@Injectable()
export class PolicyService {
  constructor(
    private readonly engine: PolicyEngine,
    private readonly registry: ToolRegistry,
    private readonly executor: ExecutorService,
    private readonly metrics: GatewayMetrics,
  ) {}

  async evaluate(agent: Agent, envelope: ToolCallEnvelope): Promise<AllowedCall> {
    const started = performance.now();
    const decision = await this.engine.decide({
      agent: { id: agent.id, role: agent.role, version: envelope.agent_version },
      tool: envelope.tool,
      arguments: envelope.arguments,
    });
    this.metrics.policyDecision((performance.now() - started) / 1000);
    if (!decision.allow) {
      const text = DENY_TEXT[decision.reason_code]?.(envelope.tool, agent.role) ?? 'Denied by policy';
      throw new PolicyDenied(decision.reason_code, text, decision.details);
    }
    // Whatever an engine says, only a registered tool runs.
    const tool = this.registry.get(envelope.tool);
    if (!tool) throw new PolicyDenied('tool_not_registered', DENY_TEXT.tool_not_registered(envelope.tool, agent.role));

    if (!tool.validateArguments(envelope.arguments)) throw new ArgumentsInvalid(argumentErrors(tool, envelope.arguments));
    this.executor.preflight(tool, envelope.arguments);
    // The config's requires_approval holds even if an engine forgets it.
    return { tool, requiresApproval: decision.requires_approval || tool.requires_approval };
  }
}
