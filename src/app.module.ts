import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { ApprovalModule } from './approval/approval.module';
import { ApprovalsApiModule } from './approvals-api/approvals-api.module';
import { AuditApiModule } from './audit-api/audit-api.module';
import { AuditModule } from './audit/audit.module';
import { AuditExportModule } from './audit-export/audit-export.module';
import { Redactor } from './redaction/redactor';
import { AuthModule } from './auth/auth.module';
import { AuthGuard } from './auth/auth.guard';
import { GatewayExceptionFilter } from './edge/gateway-exception.filter';
import { RouteGuard } from './edge/route.guard';
import { ConfigModule } from './config/config.module';
import { ConsoleModule } from './console/console.module';
import { DatabaseModule } from './database/database.module';
import { GatewayConfig } from './config/gateway-config';
import { ExecutorModule } from './executor/executor.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { McpModule } from './mcp/mcp.module';
import { PolicyModule } from './policy/policy.module';
import { RegistryModule } from './registry/registry.module';
import { EnvelopeGuard } from './edge/envelope.guard';
import { SecretsModule } from './secrets/secrets.module';
import { ThrottleModule } from './throttle/throttle.module';
import { ToolsModule } from './tools/tools.module';
import { gatewayLogger, nestLoggerParams } from './logger.options';

@Module({})
export class AppModule {
  /** `logDestination`: where the pino logs go (default stdout); tests capture them. */
  static forRoot(config: GatewayConfig, options: { logDestination?: DestinationStream } = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule,
        MetricsModule,
        SecretsModule,
        AuditModule,
        AuditExportModule,
        LoggerModule.forRootAsync({
          inject: [Redactor],
          useFactory: (redactor: Redactor) => nestLoggerParams(gatewayLogger(redactor, options.logDestination)),
        }),
        ThrottleModule,
        AuthModule,
        RegistryModule,
        PolicyModule,
        ExecutorModule,
        ApprovalModule,
        ApprovalsApiModule,
        AuditApiModule,
        ToolsModule,
        McpModule,
        HealthModule,
        ConsoleModule,
      ],
      providers: [
        { provide: APP_FILTER, useClass: GatewayExceptionFilter },
        // The REST door, in the order of checks (README): the matched route and its body (1), address and
        // identity (2–3), envelope (4). Rows 5–14 are the ToolCallPipeline's, the same for both doors.
        RouteGuard,
        { provide: APP_GUARD, useExisting: RouteGuard },
        { provide: APP_GUARD, useExisting: AuthGuard },
        { provide: APP_GUARD, useExisting: EnvelopeGuard },
      ],
    };
  }
}
