import { Module } from '@nestjs/common';
import { AuditExporter } from './audit-exporter';
import { sinkCursorsProvider } from './sink-cursors';

/** audit_sinks: the audit chain streamed to syslog, HTTP (NDJSON) and OTLP receivers. */
@Module({ providers: [sinkCursorsProvider, AuditExporter] })
export class AuditExportModule {}
