import { Module } from '@nestjs/common';
import { ApprovalModule } from '../approval/approval.module';
import { ExecutorModule } from '../executor/executor.module';
import { RegistryModule } from '../registry/registry.module';
import { EnvelopeGuard } from './envelope.guard';
import { ToolCallService } from './tool-call.service';
import { ToolsController } from './tools.controller';

@Module({
  imports: [RegistryModule, ApprovalModule, ExecutorModule],
  controllers: [ToolsController],
  providers: [ToolCallService, EnvelopeGuard],
  exports: [EnvelopeGuard],
})
export class ToolsModule {}
