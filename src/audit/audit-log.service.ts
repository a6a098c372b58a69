import { closeSync, fdatasync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { GatewayError } from '../common/errors';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../health/gateway-metrics';
import { AuditIndex, AuditQuery, IndexRow } from './audit-index';
import { AuditFields, AuditRecord, checkLine, GENESIS_HASH, sealRecord, verifySeal } from './audit-record';
import { Redactor } from './redactor';

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

const CHUNK = 1 << 20;
const fdatasyncAsync = promisify(fdatasync);

/**
 * The hash-chained, append-only audit log (API.md §7). Appends are queued and written in order by
 * one writer, many records per write (and per fsync with settings.audit_fsync), so concurrent
 * requests never interleave or fork the chain. `append` resolves only once the record is written.
 * The write itself is synchronous: appending a few KiB to the page cache costs less than a hop
 * through the libuv thread pool; the fsync, which waits for the disk, is not.
 */
@Injectable()
export class AuditLog implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(AuditLog.name);
  private readonly file: string;
  private readonly index: AuditIndex;
  private fd?: number;
  private queue: Pending[] = [];
  private flushing?: Promise<void>;
  private nextSeq = 1;
  private lastHash = GENESIS_HASH;
  private offset = 0;
  /** False after a failed write: the file's tail is unknown until a restart re-reads it. */
  private writable = false;

  constructor(
    private readonly config: GatewayConfig,
    private readonly redactor: Redactor,
    private readonly metrics: GatewayMetrics,
  ) {
    this.file = config.paths.auditLog;
    this.index = new AuditIndex(join(config.paths.dataDir, 'audit-index.db'));
  }

  onModuleInit(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    this.resume();
    this.fd = openSync(this.file, 'a');
    this.writable = true;
  }

  get healthy(): boolean {
    return this.writable;
  }

  /** Writes one record; resolves once it is in the file (and fsynced with audit_fsync). */
  append(fields: AuditFields): Promise<void> {
    if (!this.writable) {
      this.metrics.auditWriteFailed(1);
      return Promise.reject(new AuditUnavailable());
    }
    const redacted = fields.arguments === undefined ? fields : { ...fields, arguments: this.redactor.redact(fields.arguments) };
    return new Promise((resolve, reject) => {
      this.queue.push({ fields: redacted, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Matching records, oldest first, read back from the file through the index. */
  async find(query: AuditQuery): Promise<AuditRecord[]> {
    const rows = this.index.find(query);
    if (rows.length === 0) return [];
    const reader = await open(this.file, 'r');
    try {
      return await Promise.all(
        rows.map(async (row) => {
          const buffer = Buffer.alloc(row.length - 1);
          await reader.read(buffer, 0, buffer.length, row.offset);
          return JSON.parse(buffer.toString('utf8')) as AuditRecord;
        }),
      );
    } finally {
      await reader.close();
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.flushing;
    this.writable = false;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.index.close();
  }

  private async flush(): Promise<void> {
    // One event-loop turn: the records of every request handled in it go out in one write.
    await new Promise(setImmediate);
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      let seq = this.nextSeq;
      let prev = this.lastHash;
      let offset = this.offset;
      const lines: string[] = [];
      const rows: IndexRow[] = [];
      for (const { fields } of batch) {
        const { line, hash } = sealRecord(fields, seq, prev);
        const length = Buffer.byteLength(line) + 1;
        lines.push(line);
        rows.push({ seq, audit_id: fields.audit_id, request_id: fields.request_id ?? null, agent_id: fields.agent_id ?? null, hash, offset, length });
        seq += 1;
        prev = hash;
        offset += length;
      }
      try {
        const fd = this.fd;
        if (!this.writable || fd === undefined) throw new AuditUnavailable();
        const data = Buffer.from(`${lines.join('\n')}\n`);
        for (let written = 0; written < data.length; ) written += writeSync(fd, data, written, data.length - written);
        if (this.config.settings.audit_fsync) await fdatasyncAsync(fd);
        this.index.insertBatch(rows);
        this.nextSeq = seq;
        this.lastHash = prev;
        this.offset = offset;
        batch.forEach((p) => p.resolve());
      } catch (err) {
        this.writable = false;
        this.metrics.auditWriteFailed(batch.length);
        this.logger.error({ err_code: (err as NodeJS.ErrnoException).code }, 'audit log write failed: refusing calls until restart');
        batch.forEach((p) => p.reject(new AuditUnavailable()));
      }
    }
    this.flushing = undefined;
  }

  /**
   * Continues the chain from the file's last record. Reads only what follows the index's head
   * (so start-up does not read a large file), checks the head's own record is still there and
   * unchanged, and indexes records written after it (a crash between write and index).
   */
  private resume(): void {
    const fd = openSync(this.file, 'a+');
    try {
      const size = fstatSync(fd).size;
      const head = this.index.head();
      let offset = 0;
      if (head) {
        if (size < head.offset + head.length) {
          throw new Error(`${this.file} ends before record seq ${head.seq} that the audit index holds: records were removed. Run npm run audit:verify`);
        }
        const buffer = Buffer.alloc(head.length - 1);
        readSync(fd, buffer, 0, buffer.length, head.offset);
        if (verifySeal(buffer.toString('utf8')) !== head.hash) {
          throw new Error(`${this.file}: record seq ${head.seq} no longer matches the audit index: the file was changed. Run npm run audit:verify`);
        }
        this.nextSeq = head.seq + 1;
        this.lastHash = head.hash;
        offset = head.offset + head.length;
      }
      this.offset = this.catchUp(fd, offset, size);
    } finally {
      closeSync(fd);
    }
  }

  /** Indexes complete records from `offset` on; drops a torn last line (a write cut short, never acknowledged). */
  private catchUp(fd: number, from: number, size: number): number {
    // latin1 keeps one character per byte, so string lengths are byte offsets.
    let carry = '';
    let lineStart = from;
    let indexed = 0;
    for (let pos = from; pos < size; pos += CHUNK) {
      const buffer = Buffer.alloc(Math.min(CHUNK, size - pos));
      readSync(fd, buffer, 0, buffer.length, pos);
      const parts = (carry + buffer.toString('latin1')).split('\n');
      carry = parts.pop()!;
      const rows: IndexRow[] = [];
      for (const part of parts) {
        const checked = checkLine(Buffer.from(part, 'latin1').toString('utf8'), this.nextSeq, this.lastHash);
        if (!('record' in checked)) throw new Error(`${this.file}: record seq ${this.nextSeq}: ${checked.problem}. Run npm run audit:verify`);
        const r = checked.record;
        rows.push({ seq: r.seq, audit_id: r.audit_id, request_id: r.request_id ?? null, agent_id: r.agent_id ?? null, hash: r.hash, offset: lineStart, length: part.length + 1 });
        lineStart += part.length + 1;
        this.nextSeq = r.seq + 1;
        this.lastHash = r.hash;
      }
      this.index.insertBatch(rows);
      indexed += rows.length;
    }
    if (carry.length > 0) {
      this.logger.warn(`${this.file}: dropping an incomplete last line of ${carry.length} bytes (a write cut short before it was acknowledged)`);
      ftruncateSync(fd, lineStart);
    }
    if (indexed > 0) this.logger.log(`audit index caught up with ${indexed} record(s) from ${this.file}`);
    return lineStart;
  }
}
