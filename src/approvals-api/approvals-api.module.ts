import { Module } from '@nestjs/common';
import { ApprovalModule } from '../approval/approval.module';
import { PipelineModule } from '../pipeline/pipeline.module';
import { ApprovalController } from './approval.controller';

/** The approvers' door: POST /approve (through the ToolCallPipeline), listings, views and previews. */
@Module({
  imports: [ApprovalModule, PipelineModule],
  controllers: [ApprovalController],
})
export class ApprovalsApiModule {}
