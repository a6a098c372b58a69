import { DynamicModule, Global, Module } from '@nestjs/common';
import { GatewayConfig } from './gateway-config';
import { InstanceId } from './instance-id';

/** Provides the already-loaded GatewayConfig to every module. */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [
        { provide: GatewayConfig, useValue: config },
        { provide: InstanceId, useFactory: () => InstanceId.of(config) },
      ],
      exports: [GatewayConfig, InstanceId],
    };
  }
}
