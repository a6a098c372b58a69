import type { Params } from 'nestjs-pino';

/** Request logs: one line per request; credential headers never reach the log. */
export function loggerOptions(): Params {
  return {
    pinoHttp: {
      level: process.env.LOG_LEVEL || 'info',
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-agent-signature"]', 'res.headers["set-cookie"]'],
        censor: '[REDACTED]',
      },
      // Logged at the level of the outcome, without the bodies.
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
      customProps: (req) => ({ agent_id: req.headers['x-agent-id'] }),
      serializers: {
        req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url }),
        res: (res: { statusCode: number }) => ({ status: res.statusCode }),
      },
      quietReqLogger: true,
    },
  };
}
