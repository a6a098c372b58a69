import type { StoredLine } from '../audit/audit-store';

/**
 * One receiver of the audit stream (audit_sinks[] in gateway.yaml). `send` delivers a batch of
 * records in seq order and resolves only once the receiver has them; anything else is a throw, and
 * the exporter sends the same records again later (at least once).
 */
export interface AuditSink {
  send(records: readonly StoredLine[], signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Why a send failed, in words safe for the log: never a URL, a header or a record. */
export class SinkFailed extends Error {
  override readonly name = 'SinkFailed';
}

/** What a failed network operation says in the log: its error code, never its message (which may name a URL). */
export function networkProblem(err: unknown): string {
  if (err instanceof SinkFailed) return err.message;
  if ((err as Error)?.name === 'TimeoutError') return 'no answer in time';
  const { code, cause } = (err ?? {}) as { code?: unknown; cause?: { code?: unknown } };
  const found = typeof cause?.code === 'string' ? cause.code : code;
  return typeof found === 'string' ? found : 'network error';
}

/** The fields of a record the sinks label it with, read from its line (records are JSON objects written by the audit log). */
export function recordMeta(line: string): { ts: string; event: string; instance_id?: string; trace_id?: string; span_id?: string } {
  const record = JSON.parse(line) as Record<string, unknown>;
  const text = (key: string) => {
    const value = record[key];
    return typeof value === 'string' ? value : undefined;
  };
  return {
    ts: text('ts') ?? new Date().toISOString(),
    event: text('event') ?? 'audit',
    instance_id: text('instance_id'),
    trace_id: text('trace_id'),
    span_id: text('span_id'),
  };
}
