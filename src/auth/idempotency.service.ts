import { Injectable, Logger, Optional } from '@nestjs/common';
import { GatewayError, LimitsUnavailable } from '../core/errors';
import type { RequestContext } from '../context/request-context';
import { ConfigSwaps } from '../config/config-reload';
import { GatewayConfig } from '../config/gateway-config';
import { IdempotencyStore } from './idempotency.store';

/** Not an error: the stored first answer, sent again with `Idempotent-Replayed: true`. */
export class StoredReplay extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super('replay');
  }
}

// Refusals where nothing ran and a retry should be judged afresh, not replayed.
const NOT_REPLAYED = new Set([429, 500, 503]);

/**
 * One (agent_id, request_id) is one call, for idempotency_ttl_s. The key is held that
 * long from the claim on, answered or not: a call whose answer was never stored (the gateway
 * stopped while it ran) must not run again either.
 */
@Injectable()
export class Idempotency {
  private readonly logger = new Logger(Idempotency.name);
  private ttlMs!: number;
  /** Longer than any tool may run: a claim older than this was cut off, not still running. */
  private runningMs!: number;

  constructor(
    private readonly store: IdempotencyStore,
    config: GatewayConfig,
    @Optional() swaps?: ConfigSwaps,
  ) {
    this.follow(config)();
    swaps?.follow((next) => this.follow(next));
  }

  private follow(config: GatewayConfig): () => void {
    const ttlMs = config.settings.idempotency_ttl_s * 1000;
    const runningMs = Math.max(0, ...[...config.tools.values()].map((t) => t.timeout_ms)) + 60_000;
    return () => ([this.ttlMs, this.runningMs] = [ttlMs, runningMs]);
  }

  /** Takes the call's key, or throws: the stored answer (replay), or 409 in progress / interrupted / reused. */
  async claim(ctx: RequestContext, bodyHash: string): Promise<void> {
    const key = `${ctx.agent!.id}/${ctx.envelope!.request_id}`;
    let claim;
    try {
      claim = await this.store.claim(key, bodyHash, this.ttlMs);
    } catch {
      throw new LimitsUnavailable('idempotency_store_unavailable', 'The replay store');
    }
    switch (claim.kind) {
      case 'claimed':
        ctx.idempotency = { key, bodyHash };
        return;
      case 'in_progress':
        if (Date.now() - claim.since > this.runningMs) {
          throw new GatewayError(
            409,
            'conflict',
            'request_interrupted',
            'A call with this request_id was cut off before it answered (the gateway stopped) and will not run again; see the audit log, and use a new request_id to retry',
          );
        }
        throw new GatewayError(409, 'conflict', 'request_in_progress', 'A call with this request_id is still running');
      case 'reused':
        throw new GatewayError(409, 'conflict', 'request_id_reused', 'This request_id was already used for a different call');
      case 'replay':
        throw new StoredReplay(claim.status, claim.body);
    }
  }

  /**
   * Keeps the answer for replays (or frees the key when nothing ran). Safe to call more than once
   * and for a request that holds no key (it does nothing then); never throws: the answer goes out
   * regardless. If the answer cannot be stored the key stays held, so a retry is refused (409),
   * never run again. `mayHaveRun`: the tool was started or an approval filed.
   */
  async settle(ctx: RequestContext | undefined, status: number, body: unknown, mayHaveRun = false): Promise<void> {
    const claimed = ctx?.idempotency;
    if (!claimed) return;
    ctx.idempotency = undefined;
    try {
      // Once the tool may have run (or an approval was filed), even a 429 or 5xx is kept: a retry
      // must not run the call a second time. Before that, nothing happened and a retry is judged afresh.
      if (NOT_REPLAYED.has(status) && !mayHaveRun) await this.store.release(claimed.key);
      else await this.store.complete(claimed.key, claimed.bodyHash, status, body, this.ttlMs);
    } catch (err) {
      this.logger.error(
        { status, err_name: (err as Error | null)?.name, err_code: (err as { code?: string } | null)?.code },
        'could not store the answer for replay',
      );
    }
  }
}
