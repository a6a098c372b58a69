import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { Logger, PARAMS_PROVIDER_TOKEN, type Params } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import { Redactor } from './audit/redactor';
import { InvalidRequest } from './common/errors';
import { GatewayConfig } from './config/gateway-config';
import { requestLogger } from './logger.options';

/**
 * Everything main.ts and the e2e tests share about the HTTP app. Create the app with
 * `{ rawBody: true, bodyParser: false }`: the JSON parser is registered here, with our limit.
 */
export function configureApp(app: NestExpressApplication, config: GatewayConfig): NestExpressApplication {
  app.useLogger(app.get(Logger));
  app.disable('x-powered-by');
  // Answers are per call: an ETag (a SHA-1 of every body) serves no client of this API.
  app.disable('etag');
  // First, before anything can refuse the request: it starts the request's context (audit id, clock).
  app.use(requestLogger((app.get<Params>(PARAMS_PROVIDER_TOKEN).pinoHttp as { logger: PinoLogger }).logger, app.get(Redactor)));
  app.use(helmet());
  app.use(requireJsonBody);
  app.useBodyParser('json', { limit: config.settings.max_body_bytes, inflate: false });

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Agent Gateway')
      .setDescription('Signed, policy-checked, audited tool calls for AI agents. See README and API.md.')
      .setVersion('0.1.0')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Agent-Id' }, 'agent_id')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Agent-Timestamp', description: 'Unix seconds' }, 'agent_timestamp')
      .addApiKey(
        { type: 'apiKey', in: 'header', name: 'X-Agent-Signature', description: 'base64 signature of "v1\\n{ts}\\n{METHOD}\\n{path}\\n{hex sha256(body)}"' },
        'agent_signature',
      )
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'Approver token (its SHA-256 is in gateway.yaml)' }, 'approver')
      .build(),
  );
  SwaggerModule.setup('docs', app, document);
  return app;
}

/** API.md §4 row 1: a request that carries a body must carry JSON (415 otherwise). */
function requireJsonBody(req: Request, _res: Response, next: NextFunction): void {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody && !req.is('application/json')) {
    next(new InvalidRequest('unsupported_media_type', 'Content-Type must be application/json', undefined, 415));
    return;
  }
  next();
}
