import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { PolicyModule } from '../policy/policy.module';
import { HealthController } from './health.controller';

@Module({ imports: [AuthModule, PolicyModule], controllers: [HealthController] })
export class HealthModule {}
