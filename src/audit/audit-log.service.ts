import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { sha256Hex } from '../core/hashing';
import { GatewayError } from '../core/errors';
import { GatewayConfig } from '../config/gateway-config';
import { InstanceId } from '../config/instance-id';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { AuditQuery } from './audit-index';
import { AuditFields, AuditRecord, AuditSeal, GENESIS_HASH, sealRecord } from './audit-record';
import { AuditStore, ChainHead, sameHead, SealedRecord } from './audit-store';
import { Redactor } from '../redaction/redactor';

export class AuditUnavailable extends GatewayError {
  constructor() {
    super(503, 'audit_unavailable', 'audit_unavailable', 'The audit log cannot be written; nothing was executed');
  }
}

interface Pending {
  fields: AuditFields;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * How often the chain's head goes to the application log as an `audit checkpoint` line: after this
 * many records, and at least this often while records are written (and at start and shutdown). The
 * application log is shipped elsewhere (a supervisor, journald, a log collector), out of reach of
 * whoever can rewrite the data dir: `audit:verify --checkpoint <seq>:<hash>` then notices records
 * removed from the end of the log even when the audit index is gone too.
 */
export const CHECKPOINT_EVERY_RECORDS = 1000;
export const CHECKPOINT_INTERVAL_MS = 60_000;

/** The most of a call's arguments one record keeps, as redacted JSON; beyond it the record keeps a cut, the full size and SHA-256. */
export const AUDIT_ARGUMENTS_MAX_BYTES = 16 * 1024;

/**
 * The hash-chained, append-only audit log: this instance's chain, named by its
 * instance id, in the AuditStore chosen at start (the JSONL file, or PostgreSQL). Appends are
 * queued and sealed in order by one writer, many records per store write, so concurrent requests
 * never interleave or fork the chain. `append` resolves only once the store holds the record.
 * After a failed write it refuses (503) until it can resume: the file only after a restart; the
 * database on the next append that finds the stored head where this writer left it.
 */
@Injectable()
export class AuditLog implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(AuditLog.name);
  private readonly seal: AuditSeal;
  private readonly instanceId: string;
  private queue: Pending[] = [];
  private flushing?: Promise<void>;
  private head: ChainHead = { seq: 0, hash: GENESIS_HASH };
  private writable = false;
  /** The head a failed write would have made: if the store holds it, the write was committed after all. */
  private unconfirmed?: ChainHead;
  /** False once the stored chain moved under this writer: it may not continue it before a restart. */
  private resumable = true;
  private resuming?: Promise<void>;
  /** The head last written to the application log as a checkpoint. */
  private checkpointed?: ChainHead;
  private checkpointTimer?: NodeJS.Timeout;

  constructor(
    config: GatewayConfig,
    private readonly redactor: Redactor,
    private readonly metrics: GatewayMetrics,
    @Inject(AuditStore) private readonly store: AuditStore,
    instance: InstanceId,
  ) {
    this.seal = new AuditSeal(config.auditKey);
    this.instanceId = instance.value;
  }

  async onModuleInit(): Promise<void> {
    if (this.seal.kind === 'sha256') {
      this.logger.warn(
        'GATEWAY_AUDIT_KEY is not set: the audit chain proves the order of records but not who wrote them (anyone who can write the data dir can rewrite it). Set it to a random secret of 32+ characters kept outside the data dir.',
      );
    }
    this.head = await this.store.open(this.seal);
    this.writable = true;
    this.checkpoint();
    this.checkpointTimer = setInterval(() => this.checkpoint(), CHECKPOINT_INTERVAL_MS).unref();
  }

  /** Whether records can be written now (readiness); after a failed write it tries to resume, so an idle instance comes back by itself. */
  async ready(): Promise<boolean> {
    if (!this.writable) await this.resume();
    return this.writable;
  }

  /** Writes one record; resolves once the store holds it (for the file: written, and fsynced with audit_fsync). */
  async append(fields: AuditFields): Promise<void> {
    if (!this.writable) await this.resume();
    if (!this.writable) {
      this.metrics.auditWriteFailed(1);
      throw new AuditUnavailable();
    }
    const bounded = this.boundArguments(fields);
    return new Promise((resolve, reject) => {
      this.queue.push({ fields: bounded, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Matching records, the newest `limit`, oldest first (every instance's, with a shared database). */
  find(query: AuditQuery): Promise<AuditRecord[]> {
    return this.store.find(query);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.resuming;
    await this.flushing;
    clearInterval(this.checkpointTimer);
    this.checkpoint();
    this.writable = false;
    await this.store.close();
  }

  /**
   * Redacts the arguments, and cuts them when their redacted JSON is larger than
   * AUDIT_ARGUMENTS_MAX_BYTES, keeping the size and SHA-256 of the exact arguments JSON, so
   * one agent's input cannot grow the log (or the writer's memory) without bound.
   */
  private boundArguments(fields: AuditFields): AuditFields {
    if (fields.arguments === undefined) return fields;
    const redacted = this.redactor.redact(fields.arguments);
    const json = JSON.stringify(redacted);
    if (json === undefined || Buffer.byteLength(json) <= AUDIT_ARGUMENTS_MAX_BYTES) return { ...fields, arguments: redacted };
    const exact = JSON.stringify(fields.arguments);
    return {
      ...fields,
      arguments: startOfJson(json, AUDIT_ARGUMENTS_MAX_BYTES),
      arguments_truncated: true,
      arguments_bytes: Buffer.byteLength(exact),
      arguments_sha256: fields.arguments_sha256 ?? sha256Hex(exact),
    };
  }

  private async flush(): Promise<void> {
    // One event-loop turn: the records of every request handled in it go out in one write.
    await new Promise(setImmediate);
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      if (!this.writable) {
        this.refuse(batch);
        continue;
      }
      const from = this.head;
      let { seq, hash } = from;
      const records: SealedRecord[] = batch.map(({ fields }) => {
        seq += 1;
        const ts = new Date().toISOString();
        const sealed = sealRecord({ instance_id: this.instanceId, ...fields }, seq, hash, this.seal, ts);
        hash = sealed.hash;
        return { seq, hash, ts, line: sealed.line, fields };
      });
      try {
        await this.store.write(records, from);
        this.head = { seq, hash };
        batch.forEach((p) => p.resolve());
        if (seq - (this.checkpointed?.seq ?? 0) >= CHECKPOINT_EVERY_RECORDS) this.checkpoint();
      } catch (err) {
        this.writable = false;
        this.unconfirmed = { seq, hash };
        // Not the message: a file or database error may name a host path, a host or a user.
        this.logger.error(
          { err_code: (err as NodeJS.ErrnoException).code, err_name: (err as Error).name },
          'audit log write failed: refusing calls until the audit store can be written again',
        );
        this.refuse(batch);
      }
    }
    this.flushing = undefined;
  }

  /**
   * The head as one application-log line, when it moved since the last one. Its hash is the
   * record's seal (an HMAC under GATEWAY_AUDIT_KEY when set), so no one without the key can make
   * up a checkpoint that a rewritten log would match.
   */
  private checkpoint(): void {
    const { seq, hash } = this.head;
    if (seq === 0 || sameHead(this.head, this.checkpointed)) return;
    this.checkpointed = { seq, hash };
    this.logger.log({ instance_id: this.instanceId, seq, hash, checkpoint: `${seq}:${hash}` }, 'audit checkpoint');
  }

  private refuse(batch: Pending[]): void {
    this.metrics.auditWriteFailed(batch.length);
    batch.forEach((p) => p.reject(new AuditUnavailable()));
  }

  /** One attempt at a time, shared by every request that waits for it. */
  private resume(): Promise<void> {
    this.resuming ??= this.tryResume().finally(() => (this.resuming = undefined));
    return this.resuming;
  }

  /**
   * Continues when the store's head is where this writer left it, or where the failed write would
   * have put it (its commit went through, only the answer was lost). Any other head means another
   * writer moved this chain: continuing would fork it.
   */
  private async tryResume(): Promise<void> {
    if (!this.resumable) return;
    await this.flushing;
    let stored: ChainHead | undefined;
    try {
      stored = await this.store.reopen();
    } catch {
      return; // still unreachable: the next append tries again
    }
    if (stored === undefined) return;
    if (sameHead(stored, this.unconfirmed)) this.head = stored;
    else if (!sameHead(stored, this.head)) {
      this.resumable = false;
      this.logger.error(
        `audit chain "${this.instanceId}" was moved by another writer (stored head seq ${stored.seq}, this instance wrote up to seq ${this.head.seq}): refusing calls until restart. Is GATEWAY_INSTANCE_ID shared by two instances?`,
      );
      return;
    }
    this.unconfirmed = undefined;
    this.writable = true;
    this.logger.log(`audit log writable again (chain "${this.instanceId}" continues after seq ${this.head.seq})`);
  }
}

/** The longest start of `json` whose JSON string encoding fits in `maxBytes` (never half a surrogate pair). */
function startOfJson(json: string, maxBytes: number): string {
  const fits = (length: number) => Buffer.byteLength(JSON.stringify(json.slice(0, length))) <= maxBytes;
  let low = 0;
  let high = Math.min(json.length, maxBytes);
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (fits(mid)) low = mid;
    else high = mid - 1;
  }
  const last = json.charCodeAt(low - 1);
  return json.slice(0, last >= 0xd800 && last <= 0xdbff ? low - 1 : low);
}
