import { Injectable } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApprovalViewDto } from '../approval/approval.dto';

/** The caps of settings.mcp on how many calls may wait for a human at once. */
export interface WaitingCaps {
  max_waiting_calls_per_agent: number;
  max_waiting_calls: number;
}

/**
 * The MCP requests now waiting for a human (a tools/call with a progressToken, a tasks/result of a
 * task still working), per agent and in all. Each holds a connection for up to approval_wait_s,
 * so both are capped: one agent cannot take the connections that probes, approvers and other
 * agents need. A request over either cap is answered at once.
 */
@Injectable()
export class ApprovalWaiters {
  private readonly byAgent = new Map<string, number>();
  private total = 0;

  /** A place to wait, and the function that gives it back; undefined when either cap is reached. */
  enter(agentId: string, caps: WaitingCaps): (() => void) | undefined {
    const own = this.byAgent.get(agentId) ?? 0;
    if (own >= caps.max_waiting_calls_per_agent || this.total >= caps.max_waiting_calls) return undefined;
    this.byAgent.set(agentId, own + 1);
    this.total++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.total--;
      const remaining = (this.byAgent.get(agentId) ?? 1) - 1;
      if (remaining === 0) this.byAgent.delete(agentId);
      else this.byAgent.set(agentId, remaining);
    };
  }
}

/** How often a waiting request reads its approval again. */
export const APPROVAL_POLL_MS = 1000;

/** Whether an approval still waits: pending, or approved and running. */
export function undecided(view: ApprovalViewDto): boolean {
  return view.status === 'pending' || view.status === 'approved';
}

/**
 * Reads the approval every second until it has ended (executed, rejected, expired, withdrawn,
 * failed), the deadline passes or the client goes away: the ended view, else undefined. A read
 * that fails is tried again on the next tick.
 */
export async function untilEnded(read: () => Promise<ApprovalViewDto>, deadline: number, signal: AbortSignal): Promise<ApprovalViewDto | undefined> {
  while (!signal.aborted) {
    const view = await read().catch(() => undefined);
    if (view && !undecided(view)) return view;
    const left = deadline - Date.now();
    if (left <= 0) return undefined;
    await sleep(Math.min(APPROVAL_POLL_MS, left), undefined, { signal }).catch(() => undefined);
  }
  return undefined;
}
