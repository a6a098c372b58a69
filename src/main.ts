import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { configureApp, createHttpAdapter } from './app.setup';
import { ConfigError, loadGatewayConfig } from './config/config.loader';
import { GatewayConfig } from './config/gateway-config';
import { KIND_CONFIGS } from './kinds';
import { ConfigReloader } from './health/config-reloader';
import { configureHttpServer, httpServerLimits } from './http-server';
import { startTracing, stopTracing } from './telemetry/tracing';

function loadConfigOrExit(): GatewayConfig {
  try {
    return loadGatewayConfig(process.env, { kinds: KIND_CONFIGS });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`config error: ${err.message}\n`);
    process.exit(1);
  }
}

async function bootstrap(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadConfigOrExit();
  // Before the app exists, so its logger and tool calls see it; off (nothing loaded) without an OTEL_EXPORTER_OTLP_* endpoint.
  const tracing = startTracing(process.env);
  const httpLimits = httpServerLimits(process.env);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), createHttpAdapter(), {
    rawBody: true,
    bodyParser: false,
    bufferLogs: true,
    abortOnError: false,
  });
  configureApp(app, config);
  const logger = app.get(Logger);
  // SIGHUP, and a change of the config file or its secret files, reload the configuration (README "Operating it").
  app.get(ConfigReloader).start(process.env);
  configureHttpServer(app.getHttpServer(), httpLimits, (message) => logger.warn(message));
  if (config.demoCredentials.length > 0) {
    logger.warn(
      `Shipped demo credentials in use, for local development only: ${config.demoCredentials.join(', ')}. Set these variables (see .env.example) before exposing the gateway.`,
    );
  }
  // One instance on PostgreSQL is a legitimate set-up, so this warns rather than refuses.
  if (config.databaseUrl && !config.redisUrl) {
    logger.warn(
      'GATEWAY_DATABASE_URL is set without GATEWAY_REDIS_URL: rate-limit counters stay in this instance (replay keys are in PostgreSQL). Run only one instance this way: several instances would each keep their own limits. Set GATEWAY_REDIS_URL to share them.',
    );
  }
  const port = Number(process.env.PORT || 8000);
  const host = process.env.HOST || '0.0.0.0';
  await app.listen(port, host);
  logger.log(`Agent Gateway listening on http://${host}:${port} (config ${config.source}, Swagger UI at /docs)`);
  const otlp = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (tracing) logger.log(`OpenTelemetry tracing on: spans go over OTLP/HTTP to ${otlp}`);

  // SIGTERM/SIGINT: stop accepting, let in-flight calls finish (bounded), flush the audit log and
  // close the stores (shutdown hooks), then exit 0.
  const shutdown = async (signal: string) => {
    logger.log(`${signal}: draining in-flight requests (at most ${DRAIN_MS} ms)`);
    const server = app.getHttpServer();
    setTimeout(() => server.closeAllConnections(), DRAIN_MS).unref();
    setTimeout(() => process.exit(1), DRAIN_MS + 5000).unref();
    await app.close();
    // The spans still buffered are sent before the process ends.
    await stopTracing();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

const DRAIN_MS = Number(process.env.GATEWAY_DRAIN_MS || 10_000);

bootstrap().catch((err: Error) => {
  // One line, no stack: e.g. the port is taken, or the audit log no longer matches its index.
  process.stderr.write(`startup error: ${err.message}\n`);
  process.exit(1);
});
