import { Injectable } from '@nestjs/common';

/** What a second request with the same (agent_id, request_id) gets (API.md §3). */
export type Claim =
  | { kind: 'claimed' }
  | { kind: 'in_progress' }
  | { kind: 'reused' }
  | { kind: 'replay'; status: number; body: unknown };

/** Stored per key: who holds it and, once done, the first response. */
export interface IdempotencyEntry {
  state: 'in_progress' | 'done';
  bodyHash: string;
  status?: number;
  body?: unknown;
}

export function claimFromEntry(entry: IdempotencyEntry, bodyHash: string): Claim {
  if (entry.bodyHash !== bodyHash) return { kind: 'reused' };
  if (entry.state === 'in_progress') return { kind: 'in_progress' };
  return { kind: 'replay', status: entry.status!, body: entry.body };
}

/**
 * Replay and idempotency keys. In memory by default; Redis (SET NX) with GATEWAY_REDIS_URL, so
 * instances share them. Entries expire, so memory stays bounded.
 */
export abstract class IdempotencyStore {
  /** Atomically takes the key for this body, or says who has it. `ttlMs` bounds a claim that never completes. */
  abstract claim(key: string, bodyHash: string, ttlMs: number): Promise<Claim>;
  /** Stores the first response, kept for `ttlMs`. */
  abstract complete(key: string, bodyHash: string, status: number, body: unknown, ttlMs: number): Promise<void>;
  /** Forgets a claim whose answer is not to be replayed (nothing ran: 429, 503). */
  abstract release(key: string): Promise<void>;
  /** Throws when the store is not usable (readiness). */
  abstract ping(): Promise<void>;
}

@Injectable()
export class MemoryIdempotencyStore extends IdempotencyStore {
  // Insertion order is expiry order for entries of one TTL, so expired ones are swept from the front.
  private readonly entries = new Map<string, IdempotencyEntry & { expiresAt: number }>();

  async claim(key: string, bodyHash: string, ttlMs: number): Promise<Claim> {
    const now = Date.now();
    this.sweep(now);
    const existing = this.entries.get(key);
    if (existing && existing.expiresAt > now) return claimFromEntry(existing, bodyHash);
    this.entries.delete(key);
    this.entries.set(key, { state: 'in_progress', bodyHash, expiresAt: now + ttlMs });
    return { kind: 'claimed' };
  }

  async complete(key: string, bodyHash: string, status: number, body: unknown, ttlMs: number): Promise<void> {
    this.entries.delete(key);
    this.entries.set(key, { state: 'done', bodyHash, status, body, expiresAt: Date.now() + ttlMs });
  }

  async release(key: string): Promise<void> {
    this.entries.delete(key);
  }

  async ping(): Promise<void> {}

  private sweep(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt > now) break;
      this.entries.delete(key);
    }
  }
}
