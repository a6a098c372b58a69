import { sha256Hex } from '../../core/hashing';

/**
 * How long a token's check is reused at most: a token revoked at its issuer (introspection), or
 * signed with a key the issuer has since dropped, still works here for at most this long.
 */
export const TOKEN_CACHE_MS = 30_000;
/** The most tokens a cache remembers; beyond it the oldest is forgotten first. */
export const TOKEN_CACHE_ENTRIES = 10_000;

export interface CachedEntry<T> {
  /** Unix ms until which the entry holds (it may be moved, e.g. once an answer arrives). */
  until: number;
  value: T;
}

/**
 * What the gateway learned about access tokens, by each token's SHA-256 (so the heap holds no
 * token), each until its own time, at most TOKEN_CACHE_ENTRIES.
 */
export class TokenCache<T> {
  private readonly entries = new Map<string, CachedEntry<T>>();

  /** The entry for `token` while it holds. */
  get(token: string): CachedEntry<T> | undefined {
    const key = sha256Hex(token);
    const entry = this.entries.get(key);
    if (entry === undefined || entry.until > Date.now()) return entry;
    this.entries.delete(key);
    return undefined;
  }

  set(token: string, value: T, until: number): CachedEntry<T> {
    const key = sha256Hex(token);
    this.entries.delete(key);
    while (this.entries.size >= TOKEN_CACHE_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    const entry = { until, value };
    this.entries.set(key, entry);
    return entry;
  }

  delete(token: string): void {
    this.entries.delete(sha256Hex(token));
  }
}
