import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { Unauthenticated } from '../core/errors';
import { Approver, GatewayConfig } from '../config/gateway-config';
import { bearerToken, entryForToken } from './bearer-token';

/** An approver: `Authorization: Bearer <token>` against each approver's token_sha256. */
@Injectable()
export class ApproverAuthenticator {
  constructor(private readonly config: GatewayConfig) {}

  authenticate(req: Request): Approver {
    const token = bearerToken(req);
    if (token === undefined) throw new Unauthenticated('missing_token', 'Authorization: Bearer <approver token> is required');
    if (token === null) throw new Unauthenticated('malformed_token', 'Authorization must be "Bearer <token>"');
    const found = entryForToken(token, this.config.approvers, (approver) => approver.token_sha256);
    if (!found) throw new Unauthenticated('invalid_token', 'Unknown approver token');
    return found;
  }
}
