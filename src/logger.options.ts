import type { RequestHandler } from 'express';
import type { Params } from 'nestjs-pino';
import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';
import type { Redactor } from './redaction/redactor';
import { contextOf } from './context/request-context';
import { callTraceIds, tracingOn, traceIdsOf } from './telemetry/tracing';

/** Marks the request line, whose fields requestLogger has made safe one by one. */
const ALREADY_REDACTED = Symbol('already redacted');

// No stacks: an error's message and name only.
const serializers = { err: (err: Error) => ({ type: err.name, message: err.message }) };

export type LogFormat = 'json' | 'pretty';

/** LOG_FORMAT when set; otherwise human-readable lines on a terminal, JSON anywhere else. */
export function logFormat(configured: string | undefined, toTerminal: boolean): LogFormat {
  if (!configured) return toTerminal ? 'pretty' : 'json';
  if (configured !== 'json' && configured !== 'pretty') throw new Error('LOG_FORMAT must be json or pretty');
  return configured;
}

/**
 * The one pino logger (stdout, or `destination`): Nest's Logger writes through it (nestjs-pino),
 * and so does the request line (requestLogger). Everything logged passes the Redactor, but for the
 * request line, whose fields are made safe one by one; errors carry no stack. JSON lines, or
 * pino-pretty's (see logFormat): both are made from the same redacted line.
 */
export function gatewayLogger(redactor: Redactor, destination?: DestinationStream): Logger {
  // Tracing on: a line written during a tool call names its trace and span (added after redaction: an id is not a secret).
  const withTrace = tracingOn() ? addCallTraceIds : (object: Record<string, unknown>) => object;
  const options: pino.LoggerOptions = {
    level: process.env.LOG_LEVEL || 'info',
    serializers,
    formatters: { log: (object) => withTrace(ALREADY_REDACTED in object ? object : redactor.redact(object)) },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((arg) => (typeof arg === 'string' ? redactor.redactString(arg) : arg)) as Parameters<typeof method>);
      },
    },
  };
  const toTerminal = !destination && process.stdout.isTTY === true;
  if (logFormat(process.env.LOG_FORMAT, toTerminal) === 'json') return destination ? pino(options, destination) : pino(options);
  // prettyFactory formats each finished line in the write call itself: unlike pino-pretty's
  // stream, nothing is queued in between, so no line is lost at exit and tests read them at once.
  const prettify = prettyFactory({
    colorize: toTerminal,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,req,res,responseTime',
    // One line per event: the request line's fields as words, the rest (reqId, agent_id, tool, err…) as one object.
    messageFormat: '{msg}{if req.method}: {req.method} {req.url} {res.status} {responseTime}ms{end}',
    errorLikeObjectKeys: [],
  });
  const out = destination ?? pino.destination(1);
  return pino(options, { write: (line: string) => out.write(prettify(line)) });
}

function addCallTraceIds(object: Record<string, unknown>): Record<string, unknown> {
  const ids = callTraceIds();
  return ids && object.trace_id === undefined ? { ...object, ...ids } : object;
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
 * One `request completed` line per request, those refused before routing included (it is the
 * first middleware): reqId (= the audit_id, so a log line leads to its audit records), method and
 * url, the verified agent or approver, the tool asked for, the status and the duration, the call's
 * trace_id and span_id when tracing is on, and the
 * name and code of an unexpected error. No headers, no body.
 *
 * Written once, with the root logger, when the response closes: pino-http made two child loggers,
 * three listeners and wrapped serializers per request (about 15% of the benchmark's throughput).
 * The strings an agent chose (url, tool) are redacted here; the line's own ids are not passed
 * through the Redactor, since a hex id can hold a digit run the card pattern would take.
 */
export function requestLogger(logger: Logger, redactor: Redactor): RequestHandler {
  return (req, res, next) => {
    // Created here, at arrival: the audit id and the clock of the request.
    const ctx = contextOf(req);
    res.once('close', () => {
      const status = res.statusCode;
      const finished = res.writableFinished;
      const level = !finished ? 'warn' : status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
      logger[level](
        {
          [ALREADY_REDACTED]: true,
          reqId: ctx.auditId,
          req: { method: req.method, url: redactor.redactString(req.originalUrl) },
          res: { status },
          responseTime: Math.round(performance.now() - ctx.startedAt),
          agent_id: ctx.agent?.id,
          approver_id: ctx.approver?.id,
          tool: ctx.envelope && redactor.redactString(ctx.envelope.tool),
          ...ctx.unexpectedError,
          ...traceIdsOf(ctx),
        },
        finished ? 'request completed' : 'request aborted',
      );
    });
    next();
  };
}
