import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';

const BEARER = /^Bearer ([\x21-\x7e]+)$/i;

/**
 * `Authorization: Bearer <token>`: the token, `undefined` without the header, `null` when malformed
 * or longer than `maxLength` (the MCP door takes OAuth access tokens, JWTs of a few kilobytes).
 */
export function bearerToken(req: Request, maxLength = 512): string | undefined | null {
  const header = req.header('authorization');
  if (header === undefined || header === '') return undefined;
  const token = BEARER.exec(header)?.[1];
  return token !== undefined && token.length <= maxLength ? token : null;
}

/**
 * The entry whose SHA-256 is the token's: only hashes are configured, never tokens. Every entry is
 * compared, in constant time each, without stopping at the first match.
 */
export function entryForToken<T>(token: string, entries: Iterable<T>, sha256Of: (entry: T) => Buffer): T | undefined {
  const digest = createHash('sha256').update(token).digest();
  let found: T | undefined;
  for (const entry of entries) {
    if (timingSafeEqual(digest, sha256Of(entry))) found ??= entry;
  }
  return found;
}
