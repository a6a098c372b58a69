import { Module } from '@nestjs/common';
import { ApprovalModule } from '../approval/approval.module';
import { ExecutorModule } from '../executor/executor.module';
import { AuthModule } from '../auth/auth.module';
import { PolicyModule } from '../policy/policy.module';
import { RegistryModule } from '../registry/registry.module';
import { ThrottleModule } from '../throttle/throttle.module';
import { EnvelopeGuard } from './envelope.guard';
import { ToolCallPipeline } from './tool-call.pipeline';
import { ToolsController } from './tools.controller';

@Module({
  imports: [RegistryModule, AuthModule, ThrottleModule, PolicyModule, ApprovalModule, ExecutorModule],
  controllers: [ToolsController],
  providers: [ToolCallPipeline, EnvelopeGuard],
  exports: [EnvelopeGuard, ToolCallPipeline],
})
export class ToolsModule {}
