import { Module } from '@nestjs/common';
import { ExecutorModule } from '../executor/executor.module';
import { RegistryModule } from '../registry/registry.module';
import { BuiltinPolicyEngine } from './builtin-policy.engine';
import { GatewayConfig } from '../config/gateway-config';
import { OpaPolicyEngine } from './opa-policy.engine';
import { PolicyEngine } from './policy-engine';
import { PolicyService } from './policy.service';

@Module({
  imports: [RegistryModule, ExecutorModule],
  providers: [
    {
      provide: PolicyEngine,
      inject: [GatewayConfig],
      // GATEWAY_POLICY_ENGINE chooses; nothing else asks which engine is in use.
      useFactory: (config: GatewayConfig) => (config.policy.engine === 'opa' ? new OpaPolicyEngine(config) : new BuiltinPolicyEngine(config)),
    },
    PolicyService,
  ],
  exports: [PolicyService, PolicyEngine],
})
export class PolicyModule {}
