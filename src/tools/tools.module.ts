import { Module } from '@nestjs/common';
import { EnvelopeGuard } from '../edge/envelope.guard';
import { PipelineModule } from '../pipeline/pipeline.module';
import { RegistryModule } from '../registry/registry.module';
import { ToolsController } from './tools.controller';

/** The REST door: POST /api/tools/call and GET /api/tools. */
@Module({
  imports: [RegistryModule, PipelineModule],
  controllers: [ToolsController],
  providers: [EnvelopeGuard],
  exports: [EnvelopeGuard],
})
export class ToolsModule {}
