import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { PolicyModule } from '../policy/policy.module';
import { ConfigReloader } from './config-reloader';
import { HealthController } from './health.controller';

@Module({ imports: [AuthModule, PolicyModule], controllers: [HealthController], providers: [ConfigReloader], exports: [ConfigReloader] })
export class HealthModule {}
