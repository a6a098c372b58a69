import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import type { Options } from 'pino-http';
import type { Redactor } from './audit/redactor';
import { contextOf } from './common/request-context';

/**
 * Application and request logs. One line per request with the verified agent, tool, status and
 * duration; no headers or bodies; everything logged passes the Redactor; errors without stacks.
 */
export function loggerOptions(redactor: Redactor, destination?: DestinationStream): Params {
  // The verified caller and tool join the one line written when the response is done (not child
  // loggers made per request: pino-http would make three more for each call).
  const withCaller = (req: IncomingMessage, fields: object) => {
    const ctx = contextOf(req as never);
    return { ...fields, reqId: ctx.auditId, agent_id: ctx.agent?.id, approver_id: ctx.approver?.id, tool: ctx.envelope?.tool };
  };
  const options: Options = {
    level: process.env.LOG_LEVEL || 'info',
    customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
    // The request's log id is its audit_id, so a log line leads to its audit records.
    genReqId: (req: IncomingMessage) => contextOf(req as never).auditId,
    customSuccessObject: (req, _res, fields) => withCaller(req, fields),
    customErrorObject: (req, _res, _err, fields) => withCaller(req, fields),
    serializers: {
      req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url }),
      // pino-http hands over a wrapper; the status is on the raw response.
      res: (res: { raw?: ServerResponse; statusCode?: number }) => ({ status: res.raw?.statusCode ?? res.statusCode }),
      err: (err: Error) => ({ type: err.name, message: err.message }),
    },
    // A backstop: the serializers above already leave headers out.
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-agent-signature"]'], censor: '[REDACTED]' },
    formatters: { log: (object) => redactor.redact(object) },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((arg) => (typeof arg === 'string' ? redactor.redactString(arg) : arg)) as Parameters<typeof method>);
      },
    },
  };
  return { pinoHttp: destination ? [options, destination] : options };
}
