import { Module } from '@nestjs/common';
import { ApprovalModule } from '../approval/approval.module';
import { KindsModule } from '../kinds/kinds.module';
import { RegistryModule } from '../registry/registry.module';
import { PipelineModule } from '../pipeline/pipeline.module';
import { ApprovalWaiters } from './approval-waiters';
import { McpClients } from './mcp-clients';
import { McpFederation } from './mcp-federation';
import { McpController } from './mcp.controller';
import { McpTasks } from './mcp-tasks';
import { McpToolServer } from './mcp-tool-server';

/** The MCP door: bearer tokens, JSON-RPC ↔ the ToolCallPipeline, approval_status. */
@Module({
  imports: [RegistryModule, PipelineModule, ApprovalModule, KindsModule],
  controllers: [McpController],
  providers: [McpToolServer, McpTasks, McpClients, ApprovalWaiters, McpFederation],
})
export class McpModule {}
