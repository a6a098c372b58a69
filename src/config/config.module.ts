import { DynamicModule, Global, Module } from '@nestjs/common';
import { ConfigSwaps } from './config-reload';
import { GatewayConfig } from './gateway-config';
import { InstanceId } from './instance-id';

/** Provides the already-loaded GatewayConfig to every module, and ConfigSwaps, the one way it changes while running. */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: GatewayConfig, useValue: config }, ConfigSwaps, { provide: InstanceId, useFactory: () => InstanceId.of(config) }],
      exports: [GatewayConfig, ConfigSwaps, InstanceId],
    };
  }
}
