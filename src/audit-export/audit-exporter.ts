import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { AuditSinkConfig, GatewayConfig } from '../config/gateway-config';
import { InstanceId } from '../config/instance-id';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { AuditStore, StoredLine } from '../audit/audit-store';
import { SecretStore } from '../secrets/secret-store';
import { AuditSink, networkProblem } from './audit-sink';
import { HttpBatchSink, NDJSON } from './http-batch-sink';
import { otlpLogs } from './otlp-logs';
import { SinkCursors } from './sink-cursors';
import { SyslogSink } from './syslog-sink';

/** How often an idle export looks for new records. */
export const POLL_MS = 250;
/** The most bytes of records one batch carries (one record always goes, whatever its size). */
export const MAX_BATCH_BYTES = 1024 * 1024;
const FIRST_BACKOFF_MS = 1000;

/**
 * Streams this instance's audit chain to each of audit_sinks, as written: it tails the committed
 * records by seq (never in a call's path: a call waits only for the local chain, which stays the
 * system of record), sends them in order in bounded batches, and moves the sink's durable cursor
 * once the sink acknowledged a batch. A sink that fails is retried with backoff (1 s doubling, up
 * to max_backoff_s) from its cursor, so after an outage or a restart it gets what it missed; a
 * batch sent but not acknowledged may arrive twice (at least once).
 */
@Injectable()
export class AuditExporter implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('AuditExport');
  private readonly stopping = new AbortController();
  private readonly exports: SinkExport[];
  private running: Promise<void>[] = [];

  constructor(
    config: GatewayConfig,
    @Inject(AuditStore) private readonly store: AuditStore,
    @Inject(SinkCursors) private readonly cursors: SinkCursors | null,
    private readonly metrics: GatewayMetrics,
    secrets: SecretStore,
    instance: InstanceId,
  ) {
    this.exports = config.auditSinks.map((sink) => new SinkExport(sink, openSink(sink, secrets, instance.value, this.logger), store, cursors!, this.logger));
  }

  onApplicationBootstrap(): void {
    if (this.exports.length === 0) return;
    this.metrics.measureAuditSinkLagWith(() => this.lag());
    this.running = this.exports.map((e) => e.run(this.stopping.signal));
  }

  /** Stops before the audit store closes; a batch on its way is abandoned and sent again at the next start. */
  async onModuleDestroy(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.running);
    await Promise.all(this.exports.map((e) => e.sink.close()));
    await this.cursors?.close();
  }

  /** Per sink: records committed to the chain that the sink has not acknowledged. */
  private async lag(): Promise<ReadonlyMap<string, number>> {
    const last = await this.store.lastSeq();
    return new Map(this.exports.flatMap((e) => (e.acked === undefined ? [] : [[e.name, Math.max(0, last - e.acked)] as const])));
  }
}

function openSink(config: AuditSinkConfig, secrets: SecretStore, instanceId: string, logger: Logger): AuditSink {
  const warn = (message: string) => logger.warn(`audit sink "${config.name}": ${message}`);
  switch (config.type) {
    case 'syslog':
      return new SyslogSink(config);
    case 'http':
      return new HttpBatchSink(config, NDJSON, secrets, warn);
    case 'otlp':
      return new HttpBatchSink(config, otlpLogs(config.service_name, instanceId), secrets, warn);
  }
}

/** One sink's export loop and its cursor. */
class SinkExport {
  readonly name: string;
  /** The last seq the sink acknowledged; undefined until read from the cursor store. */
  acked?: number;
  private failures = 0;
  private readFailures = 0;

  constructor(
    private readonly config: AuditSinkConfig,
    readonly sink: AuditSink,
    private readonly store: AuditStore,
    private readonly cursors: SinkCursors,
    private readonly logger: Logger,
  ) {
    this.name = config.name;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        if (this.acked === undefined) this.acked = await this.resumeAt();
        const batch = bounded(await this.store.readAfter(this.acked, this.config.batch_size));
        this.readFailures = 0;
        if (batch.length === 0) {
          await pause(POLL_MS, signal);
          continue;
        }
        await this.deliver(batch, signal);
      } catch (err) {
        if (signal.aborted) return;
        // The audit store or the cursor store could not be read (PostgreSQL away): try again shortly.
        this.readFailures += 1;
        if (this.readFailures === 1 || this.readFailures % 60 === 0) {
          this.logger.warn(`audit sink "${this.name}": cannot read the audit chain or the sink's cursor (${networkProblem(err)}); retrying every second`);
        }
        await pause(this.backoffMs(1), signal);
      }
    }
  }

  /** The stored cursor; a cursor past the chain's end (a new chain in this data dir) starts the export over. */
  private async resumeAt(): Promise<number> {
    const cursor = await this.cursors.get(this.name);
    const last = await this.store.lastSeq();
    if (cursor <= last) return cursor;
    this.logger.warn(
      `audit sink "${this.name}": its cursor (seq ${cursor}) is past the end of the audit chain (seq ${last}); exporting the chain from its start`,
    );
    await this.cursors.set(this.name, 0);
    return 0;
  }

  private async deliver(batch: StoredLine[], signal: AbortSignal): Promise<void> {
    try {
      await this.sink.send(batch, signal);
    } catch (err) {
      if (signal.aborted) return;
      this.failures += 1;
      const wait = this.backoffMs(this.failures);
      if (this.failures === 1 || this.failures % 10 === 0) {
        this.logger.warn(
          `audit sink "${this.name}" (${this.config.type}): sending records after seq ${this.acked} failed ${this.failures} time(s) (${networkProblem(err)}); retrying in ${Math.round(wait / 1000)} s`,
        );
      }
      await pause(wait, signal);
      return;
    }
    if (this.failures > 0) this.logger.log(`audit sink "${this.name}": delivering again after ${this.failures} failed attempt(s)`);
    this.failures = 0;
    this.acked = batch[batch.length - 1].seq;
    // Not stored: the sink may get this batch again after a restart (at least once), never miss it.
    await this.cursors.set(this.name, this.acked).catch((err) => this.logger.warn(`audit sink "${this.name}": cursor not stored (${networkProblem(err)})`));
  }

  /** 1 s, doubling, up to max_backoff_s, with ±20 % jitter so instances do not retry in step. */
  private backoffMs(failures: number): number {
    const base = Math.min(FIRST_BACKOFF_MS * 2 ** Math.min(failures - 1, 20), this.config.max_backoff_s * 1000);
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }
}

/** The longest start of `records` within MAX_BATCH_BYTES, at least one record. */
function bounded(records: StoredLine[]): StoredLine[] {
  let bytes = 0;
  const end = records.findIndex((r, i) => (bytes += Buffer.byteLength(r.line) + 1) > MAX_BATCH_BYTES && i > 0);
  return end === -1 ? records : records.slice(0, end);
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal, ref: false }).catch(() => undefined);
}
