import { Module } from '@nestjs/common';
import { KindsModule } from '../kinds/kinds.module';
import { ExecutorService } from './executor.service';

@Module({ imports: [KindsModule], providers: [ExecutorService], exports: [ExecutorService] })
export class ExecutorModule {}
