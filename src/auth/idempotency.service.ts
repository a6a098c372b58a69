import { Injectable, Logger } from '@nestjs/common';
import { GatewayError } from '../common/errors';
import type { RequestContext } from '../common/request-context';
import { GatewayConfig } from '../config/gateway-config';
import { IdempotencyStore } from './idempotency.store';

/** Not an error: the stored first answer, sent again with `Idempotent-Replayed: true`. */
export class StoredReplay {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

// Refusals where nothing ran and a retry should be judged afresh, not replayed.
const NOT_REPLAYED = new Set([429, 500, 503]);

/** API.md §3: one (agent_id, request_id) is one call, for idempotency_ttl_s. */
@Injectable()
export class Idempotency {
  private readonly logger = new Logger(Idempotency.name);
  private readonly ttlMs: number;
  /** How long a claim may stay "in progress": longer than any tool may run. */
  private readonly claimTtlMs: number;

  constructor(
    private readonly store: IdempotencyStore,
    config: GatewayConfig,
  ) {
    this.ttlMs = config.settings.idempotency_ttl_s * 1000;
    this.claimTtlMs = Math.max(0, ...[...config.tools.values()].map((t) => t.timeout_ms)) + 60_000;
  }

  /** Takes the call's key, or throws: the stored answer (replay), or 409 in progress / reused. */
  async claim(ctx: RequestContext, bodyHash: string): Promise<void> {
    const key = `${ctx.agent!.id}/${ctx.envelope!.request_id}`;
    let claim;
    try {
      claim = await this.store.claim(key, bodyHash, this.claimTtlMs);
    } catch {
      throw new GatewayError(503, 'rate_limit_unavailable', 'idempotency_store_unavailable', 'The replay store cannot be reached; the call was refused');
    }
    switch (claim.kind) {
      case 'claimed':
        ctx.idempotency = { key, bodyHash };
        return;
      case 'in_progress':
        throw new GatewayError(409, 'conflict', 'request_in_progress', 'A call with this request_id is still running');
      case 'reused':
        throw new GatewayError(409, 'conflict', 'request_id_reused', 'This request_id was already used for a different call');
      case 'replay':
        throw new StoredReplay(claim.status, claim.body);
    }
  }

  /** Keeps the answer for replays (or frees the key when nothing ran). Once per claimed call. */
  async settle(ctx: RequestContext, status: number, body: unknown): Promise<void> {
    const claimed = ctx.idempotency;
    if (!claimed) return;
    ctx.idempotency = undefined;
    try {
      if (NOT_REPLAYED.has(status)) await this.store.release(claimed.key);
      else await this.store.complete(claimed.key, claimed.bodyHash, status, body, this.ttlMs);
    } catch {
      // The answer still goes out; a retry then sees "in progress" until the claim expires.
      this.logger.error({ status }, 'could not store the answer for replay');
    }
  }
}
