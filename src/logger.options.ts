import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { Params } from 'nestjs-pino';
import { pino, type DestinationStream, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { Redactor } from './audit/redactor';
import { contextOf } from './common/request-context';

// No headers, no bodies, no stacks. pino-http replaces a logger's serializers with its own
// defaults (which include every header) unless it is given these.
const serializers = {
  req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url }),
  res: (res: ServerResponse) => ({ status: res.statusCode }),
  err: (err: Error) => ({ type: err.name, message: err.message }),
};

/**
 * The one pino logger (JSON on stdout): Nest's Logger writes through it (nestjs-pino), and so
 * does the request line (pino-http). Everything logged passes the Redactor; errors carry no stack.
 */
export function gatewayLogger(redactor: Redactor, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: process.env.LOG_LEVEL || 'info',
    serializers,
    // A backstop: the serializers above already leave headers out.
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-agent-signature"]'], censor: '[REDACTED]' },
    formatters: { log: (object) => redactor.redact(object) },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((arg) => (typeof arg === 'string' ? redactor.redactString(arg) : arg)) as Parameters<typeof method>);
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * nestjs-pino, for Nest's Logger only. Its per-request middleware is not installed: it runs every
 * request inside an AsyncLocalStorage, which on Node 20 turns on promise hooks for every promise in
 * the process (about 8% of the benchmark's throughput). Request lines come from requestLogger.
 */
export function nestLoggerParams(logger: Logger): Params {
  return { pinoHttp: { logger }, useExisting: true, forRoutes: [] };
}

/**
 * One `request completed` line per request, the refused ones included (it runs before the body
 * parser): reqId (= the audit_id, so a log line leads to its audit records), method and url, the
 * verified agent or approver, the tool asked for, the status and the duration. No headers, no body.
 */
export function requestLogger(logger: Logger): RequestHandler {
  // The caller and tool join the line written when the response is done, not child loggers made
  // per request.
  const withCaller = (req: IncomingMessage, fields: object) => {
    const ctx = contextOf(req as never);
    return { ...fields, agent_id: ctx.agent?.id, approver_id: ctx.approver?.id, tool: ctx.envelope?.tool };
  };
  return pinoHttp({
    logger,
    serializers,
    // Ours read the raw request and response; pino-http's wrappers copy every field first.
    wrapSerializers: false,
    quietReqLogger: true,
    genReqId: (req) => contextOf(req as never).auditId,
    customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
    customSuccessObject: (req, _res, fields) => withCaller(req, fields),
    customErrorObject: (req, _res, _err, fields) => withCaller(req, fields),
  }) as unknown as RequestHandler;
}
