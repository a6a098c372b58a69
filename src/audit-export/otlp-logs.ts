import type { StoredLine } from '../audit/audit-store';
import { recordMeta } from './audit-sink';
import type { BatchEncoding } from './http-batch-sink';

const SEVERITY_INFO = 9;
const HEX_TRACE = /^[0-9a-f]{32}$/;
const HEX_SPAN = /^[0-9a-f]{16}$/;

type AnyValue = { stringValue: string } | { intValue: string };
const attribute = (key: string, value: AnyValue) => ({ key, value });

/**
 * OTLP/HTTP JSON logs (an ExportLogsServiceRequest, POSTed to a collector's /v1/logs): one log
 * record per audit record, its body the line as written, its time the record's ts, linked to the
 * call's trace when the record names one.
 */
export function otlpLogs(serviceName: string, instanceId: string): BatchEncoding {
  return {
    contentType: 'application/json',
    encode: (records) =>
      JSON.stringify({
        resourceLogs: [
          {
            resource: {
              attributes: [attribute('service.name', { stringValue: serviceName }), attribute('service.instance.id', { stringValue: instanceId })],
            },
            scopeLogs: [{ scope: { name: 'agent-gateway.audit' }, logRecords: records.map(logRecord) }],
          },
        ],
      }),
    rejected: (answer) => {
      let partial: { rejectedLogRecords?: number | string; errorMessage?: string } | undefined;
      try {
        partial = (JSON.parse(answer) as { partialSuccess?: typeof partial }).partialSuccess;
      } catch {
        return undefined;
      }
      const count = Number(partial?.rejectedLogRecords ?? 0);
      return count > 0 ? `the collector rejected ${count} record(s) of a batch (it asked not to retry them)` : undefined;
    },
  };
}

function logRecord(record: StoredLine) {
  const meta = recordMeta(record.line);
  const written = Date.parse(meta.ts);
  return {
    timeUnixNano: (BigInt(Number.isFinite(written) ? written : Date.now()) * 1_000_000n).toString(),
    observedTimeUnixNano: (BigInt(Date.now()) * 1_000_000n).toString(),
    severityNumber: SEVERITY_INFO,
    severityText: 'INFO',
    eventName: 'agent_gateway.audit',
    body: { stringValue: record.line },
    attributes: [attribute('agent_gateway.audit.seq', { intValue: String(record.seq) }), attribute('agent_gateway.audit.event', { stringValue: meta.event })],
    ...(meta.trace_id && HEX_TRACE.test(meta.trace_id) && { traceId: meta.trace_id }),
    ...(meta.span_id && HEX_SPAN.test(meta.span_id) && { spanId: meta.span_id }),
  };
}
