import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { AUDITED, AUTH_MODE, AuthMode, CHANNEL } from '../context/route.decorators';
import { Channel, contextOf } from '../context/request-context';

/**
 * The first guard: the framework has matched a route, so what the request is follows from that
 * route's metadata, never from how its URL was spelled. It also raises a body error the parser met
 * before routing (413/415/400: the first check), now that the refusal can be recorded for the right route.
 */
@Injectable()
export class RouteGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request>();
    const ctx = contextOf(req);
    const targets = [context.getHandler(), context.getClass()];
    ctx.audited = this.reflector.getAllAndOverride<boolean>(AUDITED, targets) === true;
    ctx.channel = this.reflector.getAllAndOverride<Channel | undefined>(CHANNEL, targets);
    ctx.origin = { method: req.method, path: req.path, client_ip: req.ip };
    // The MCP door proves the token first (a 401 before anything about the body) and answers a bad
    // body as JSON-RPC itself.
    const authMode = this.reflector.getAllAndOverride<AuthMode>(AUTH_MODE, targets);
    if (ctx.bodyError !== undefined && authMode !== 'mcp-token') throw ctx.bodyError as Error;
    return true;
  }
}
