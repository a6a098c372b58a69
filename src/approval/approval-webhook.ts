import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { fetch } from 'undici';
import { urlProblem } from '../config/url-rules';
import { ApprovalWebhookSettings, GatewayConfig } from '../config/gateway-config';
import type { ApprovalRecord } from './approval.repository';

/** The first attempt is immediate; each retry waits this long first. */
export const RETRY_DELAYS_MS = [1000, 4000, 16000];
const ATTEMPT_TIMEOUT_MS = 5000;
/** Announcements on their way at once; beyond this a new one is dropped (logged), so a dead receiver cannot pile up work. */
const MAX_IN_FLIGHT = 100;

/** The JSON posted for each new pending approval: Slack incoming-webhook compatible (`text`), plus the fields. */
export interface ApprovalNotice {
  text: string;
  approval_id: string;
  agent_id: string;
  tool: string;
  expires_at: string;
  console_url: string;
}

type Announced = Pick<ApprovalRecord, 'id' | 'agent_id' | 'role' | 'tool' | 'expires_at'>;

/**
 * settings.approval_webhook: tells the approvers that a call waits. Fire and forget:
 * the agent's 202 never waits for it; a failure is logged and retried with backoff, then given up.
 * The URL is never logged (a Slack webhook's path is its credential), only its host.
 */
@Injectable()
export class ApprovalWebhook implements OnModuleDestroy {
  private readonly logger = new Logger(ApprovalWebhook.name);
  private readonly stopping = new AbortController();
  private inFlight = 0;

  constructor(private readonly config: GatewayConfig) {}

  /** Starts the announcement in the background; never throws. */
  announce(record: Announced): void {
    const webhook = this.config.settings.approval_webhook;
    if (!webhook || this.stopping.signal.aborted) return;
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.logger.warn(`Approval webhook: ${MAX_IN_FLIGHT} announcements still on their way; ${record.id} is not announced`);
      return;
    }
    this.inFlight += 1;
    this.deliver(webhook, notice(record, webhook.console_url))
      .catch((err: Error) => this.logger.error(`Approval webhook: announcing ${record.id} failed (${err.name})`))
      .finally(() => (this.inFlight -= 1));
  }

  onModuleDestroy(): void {
    this.stopping.abort();
  }

  private async deliver(webhook: ApprovalWebhookSettings, message: ApprovalNotice): Promise<void> {
    const host = new URL(webhook.url).hostname;
    const body = JSON.stringify(message);
    for (let attempt = 0; ; attempt++) {
      // Checked at load too; checked again at each send so nothing but a listed host is ever asked.
      const refused = urlProblem(webhook.url, webhook.allowed_hosts);
      if (refused) return this.logger.error(`Approval webhook: not sent (${refused})`);
      const problem = await this.send(webhook.url, body);
      if (problem === undefined || this.stopping.signal.aborted) return;
      if (attempt === RETRY_DELAYS_MS.length) {
        return this.logger.error(`Approval webhook: gave up announcing ${message.approval_id} to ${host} after ${attempt + 1} attempts (${problem})`);
      }
      const delay = RETRY_DELAYS_MS[attempt];
      this.logger.warn(`Approval webhook: announcing ${message.approval_id} to ${host} failed (${problem}); retrying in ${delay / 1000} s`);
      try {
        await sleep(delay, undefined, { signal: this.stopping.signal, ref: false });
      } catch {
        return; // shutting down
      }
    }
  }

  /** One POST; undefined when the receiver answered 2xx, else what went wrong (no URL in it). */
  private async send(url: string, body: string): Promise<string | undefined> {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        // A redirect is not followed: it could lead to a host that is not allowed.
        redirect: 'manual',
        signal: AbortSignal.any([this.stopping.signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]),
      });
      await response.body?.cancel().catch(() => undefined);
      return response.status >= 200 && response.status < 300 ? undefined : `HTTP ${response.status}`;
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') return `no answer within ${ATTEMPT_TIMEOUT_MS / 1000} s`;
      const code = ((err as { cause?: NodeJS.ErrnoException }).cause ?? (err as NodeJS.ErrnoException)).code;
      return code ?? 'network error';
    }
  }
}

function notice(record: Announced, consoleUrl: string): ApprovalNotice {
  const expiresAt = new Date(record.expires_at).toISOString();
  // The fragment opens this approval in the console; it never reaches a server log.
  const link = `${consoleUrl}#approval=${encodeURIComponent(record.id)}`;
  return {
    text: `Approval needed: agent ${record.agent_id} (${record.role}) wants to run ${record.tool}. Expires ${expiresAt}. Review it: ${link}`,
    approval_id: record.id,
    agent_id: record.agent_id,
    tool: record.tool,
    expires_at: expiresAt,
    console_url: link,
  };
}
