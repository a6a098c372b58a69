import type { Request } from 'express';
import { contextOf } from '../context/request-context';
import { sha256Hex } from '../core/hashing';

const EMPTY = Buffer.alloc(0);

/** The request body's hex SHA-256, computed once: the signature and the replay check both need it. */
export function bodySha256Of(req: Request & { rawBody?: Buffer }): string {
  const ctx = contextOf(req);
  return (ctx.bodySha256 ??= sha256Hex(req.rawBody ?? EMPTY));
}
