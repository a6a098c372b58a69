import { Module } from '@nestjs/common';
import { ExecutorModule } from '../executor/executor.module';
import { RegistryModule } from '../registry/registry.module';
import { BuiltinPolicyEngine } from './builtin-policy.engine';
import { PolicyEngine } from './policy-engine';
import { PolicyService } from './policy.service';
import { ToolPolicyGuard } from './tool-policy.guard';

@Module({
  imports: [RegistryModule, ExecutorModule],
  providers: [{ provide: PolicyEngine, useClass: BuiltinPolicyEngine }, PolicyService, ToolPolicyGuard],
  exports: [PolicyService, ToolPolicyGuard],
})
export class PolicyModule {}
