import { createHash, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { Unauthenticated } from '../common/errors';
import { Approver, GatewayConfig } from '../config/gateway-config';

const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;

/** API.md §6: `Authorization: Bearer <token>` against each approver's token_sha256. */
@Injectable()
export class ApproverAuthenticator {
  constructor(private readonly config: GatewayConfig) {}

  authenticate(req: Request): Approver {
    const header = req.header('authorization');
    if (!header) throw new Unauthenticated('missing_token', 'Authorization: Bearer <approver token> is required');
    const match = BEARER.exec(header);
    if (!match) throw new Unauthenticated('malformed_token', 'Authorization must be "Bearer <token>"');
    const digest = createHash('sha256').update(match[1]).digest();
    // Compare against every approver, without stopping early, in constant time each.
    let found: Approver | undefined;
    for (const approver of this.config.approvers) {
      if (timingSafeEqual(digest, approver.token_sha256)) found ??= approver;
    }
    if (!found) throw new Unauthenticated('invalid_token', 'Unknown approver token');
    return found;
  }
}
