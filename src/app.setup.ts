import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import express from 'express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { Logger, PARAMS_PROVIDER_TOKEN, type Params } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import { Redactor } from './redaction/redactor';
import { InvalidRequest } from './core/errors';
import { toGatewayError } from './pipeline/error-body';
import { contextOf } from './context/request-context';
import { GatewayConfig } from './config/gateway-config';
import { requestLogger } from './logger.options';

/**
 * The Express app under Nest, with one spelling per route: `/API/TOOLS/CALL` and
 * `/api/tools/call/` match nothing (404). Express reads these settings when it creates its router,
 * which Nest's adapter does at once, so they are set before the adapter exists.
 */
export function createHttpAdapter(): ExpressAdapter {
  const instance = express();
  instance.set('case sensitive routing', true);
  instance.set('strict routing', true);
  return new ExpressAdapter(instance);
}

/**
 * Everything main.ts and the e2e tests share about the HTTP app. Create it on createHttpAdapter(). Create the app with
 * `{ rawBody: true, bodyParser: false }`: the JSON parser is registered here, with our limit.
 */
export function configureApp(app: NestExpressApplication, config: GatewayConfig): NestExpressApplication {
  app.useLogger(app.get(Logger));
  app.disable('x-powered-by');
  // Answers are per call: an ETag (a SHA-1 of every body) serves no client of this API.
  app.disable('etag');
  // First, before anything can refuse the request: it starts the request's context (audit id, clock).
  app.use(requestLogger((app.get<Params>(PARAMS_PROVIDER_TOKEN).pinoHttp as { logger: PinoLogger }).logger, app.get(Redactor)));
  app.use(originFormTarget);
  app.use(browserHeaders(helmet()));
  app.use(requireJsonBody);
  app.useBodyParser('json', { limit: config.settings.max_body_bytes, inflate: false });
  app.use(deferBodyError);

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Agent Gateway')
      .setDescription(
        [
          'Signed, policy-checked, audited tool calls for AI agents. Two doors, one pipeline: REST (`POST /api/tools/call`, a signed request) and MCP (`POST /mcp`, an agent bearer token). Settings named below are commented in policies/gateway.yaml; the README is the overview.',
          "**Signing.** `X-Agent-Id`, `X-Agent-Timestamp` (Unix seconds, within `settings.signature_tolerance_s`) and `X-Agent-Signature`: base64 of HMAC-SHA256 (the agent's secret) or Ed25519 (its private key) over `v1\\n{timestamp}\\n{METHOD}\\n{path with query}\\n{hex SHA-256 of the raw body bytes}`. `npm run call` signs exactly so.",
          '**Every refusal** is `{ success: false, status, reason_code, error, audit_id, request_id?, details?, details_total? }`: never a stack trace, a secret or a host path; `details` holds at most 20 entries (`details_total` then says how many). A 429 carries `Retry-After` (seconds). Routes match case-sensitively and strictly (an unknown one is 404 `not_found`); a request target in absolute form must name the `Host` (else 400 `invalid_request_target`).',
          "**Order of checks** (the first that fails answers; the MCP door runs the same from 5 on, its 1–3 being the bearer token): 1 JSON body within `max_body_bytes` (415 `unsupported_media_type`, 413 `body_too_large`, 400 `malformed_json`) · 2 failed authentications per address (429) · 3 credentials (401) · 4 envelope (400 `invalid_envelope`, `arguments_too_deep` over 64 levels) · 5 the agent's and the tool's rate limits (429; a replay spends them too) · 6 replay: the same `(agent_id, request_id)` and body gets the first answer with `Idempotent-Replayed: true`, else 409 · 7 tool registered · 8 agent version · 9 role · 10 forbidden fields at any depth, folded (all 403 `denied`) · 11 arguments vs `input_schema` (400 `invalid_arguments`) · 12 workspace path, allowed host, the tool's own check (403; 503 `tool_unavailable`) · 13 approval (202, or 429 `too_many_pending`) · 14 execute (200, 502 `tool_error`, 504 `tool_timeout`). At any step, 503 when the audit log, the policy engine or the limit/replay store cannot be used: nothing runs.",
        ].join('\n\n'),
      )
      .setVersion('0.1.0')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Agent-Id' }, 'agent_id')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Agent-Timestamp', description: 'Unix seconds' }, 'agent_timestamp')
      .addApiKey(
        { type: 'apiKey', in: 'header', name: 'X-Agent-Signature', description: 'base64 signature of "v1\\n{ts}\\n{METHOD}\\n{path}\\n{hex sha256(body)}"' },
        'agent_signature',
      )
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'Approver token (its SHA-256 is in gateway.yaml)' }, 'approver')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: "An agent's MCP token (agents[].mcp_tokens; its SHA-256 is in gateway.yaml)" }, 'mcp_token')
      .build(),
  );
  SwaggerModule.setup('docs', app, document);
  return app;
}

/**
 * A request target in absolute form (`POST http://host/api/tools/call`) is taken only when it
 * names the host the request is addressed to (its Host header), and is then rewritten to origin
 * form, the one form routes, signatures and logs see. Anything else (`*`, another authority) → 400.
 */
function originFormTarget(req: Request, _res: Response, next: NextFunction): void {
  if (req.url.startsWith('/')) return next();
  let target: URL | undefined;
  try {
    target = new URL(req.url);
  } catch {
    // not a URL: refused below
  }
  const host = req.headers.host?.toLowerCase();
  if (!target || !/^https?:$/.test(target.protocol) || host === undefined || target.host !== host || target.username || target.password) {
    return next(new InvalidRequest('invalid_request_target', 'The request target must be a path on this server'));
  }
  req.url = req.originalUrl = target.pathname + target.search;
  next();
}

/** The agents' routes: their answers are read by programs, never rendered by a browser. */
const AGENT_ROUTES = new Set(['/api/tools/call', '/mcp']);

/**
 * Helmet's security headers (CSP, framing, nosniff, HSTS…) where a browser may read the answer:
 * the console (which sets its own stricter ones after these), /docs, the approvers' API. Not on
 * the two agent routes, which answer JSON to programs on every call (README "Performance").
 */
function browserHeaders(headers: (req: Request, res: Response, next: (err?: unknown) => void) => void) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const query = req.url.indexOf('?');
    if (AGENT_ROUTES.has(query === -1 ? req.url : req.url.slice(0, query))) return next();
    headers(req, res, next);
  };
}

/** The first check: a request that carries a body must carry JSON (415 otherwise). */
function requireJsonBody(req: Request, _res: Response, next: NextFunction): void {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody && !req.is('application/json')) {
    contextOf(req).bodyError = new InvalidRequest('unsupported_media_type', 'Content-Type must be application/json', undefined, 415);
  }
  next();
}

/**
 * A body the parser refused (too large, not JSON) is kept, not answered yet: RouteGuard raises it
 * once the framework has matched the route, so the refusal is recorded for what the route is.
 */
function deferBodyError(err: unknown, req: Request, _res: Response, next: NextFunction): void {
  contextOf(req).bodyError = toGatewayError(err, contextOf(req));
  next();
}
