import { Module } from '@nestjs/common';
import { KindsModule } from '../kinds/kinds.module';
import { ToolRegistry } from './tool-registry';

@Module({ imports: [KindsModule], providers: [ToolRegistry], exports: [ToolRegistry] })
export class RegistryModule {}
