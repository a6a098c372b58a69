import { Module } from '@nestjs/common';
import { ApprovalModule } from '../approval/approval.module';
import { AuthModule } from '../auth/auth.module';
import { ExecutorModule } from '../executor/executor.module';
import { PolicyModule } from '../policy/policy.module';
import { ThrottleModule } from '../throttle/throttle.module';
import { ToolCallPipeline } from './tool-call.pipeline';

/** The one tool-call pipeline both doors drive. */
@Module({
  imports: [AuthModule, ThrottleModule, PolicyModule, ApprovalModule, ExecutorModule],
  providers: [ToolCallPipeline],
  exports: [ToolCallPipeline],
})
export class PipelineModule {}
