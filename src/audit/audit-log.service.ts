import { closeSync, fdatasync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { sha256Hex } from '../auth/signature';
import { GatewayError } from '../common/errors';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../health/gateway-metrics';
import { AuditIndex, AuditQuery, IndexRow } from './audit-index';
import { AuditFields, AuditRecord, AuditSeal, GENESIS_HASH, sealProblem, sealRecord, verifySeal } from './audit-record';
import { CHAIN_START, ChainPosition, scanChain } from './audit-verify';
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

const fdatasyncAsync = promisify(fdatasync);

/** The most of a call's arguments one record keeps, as redacted JSON; beyond it the record keeps a cut, the full size and SHA-256. */
export const AUDIT_ARGUMENTS_MAX_BYTES = 16 * 1024;
const REBUILD_HINT = 'Run npm run audit:verify -- --rebuild-index (it checks the whole chain first)';

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
  private readonly indexFile: string;
  private readonly index: AuditIndex;
  private readonly seal: AuditSeal;
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
    this.indexFile = join(config.paths.dataDir, 'audit-index.db');
    this.index = new AuditIndex(this.indexFile);
    this.seal = new AuditSeal(config.auditKey);
  }

  onModuleInit(): void {
    if (this.seal.kind === 'sha256') {
      this.logger.warn(
        'GATEWAY_AUDIT_KEY is not set: the audit chain proves the order of records but not who wrote them (anyone who can write the data dir can rewrite it). Set it to a random secret of 32+ characters kept outside the data dir.',
      );
    }
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
    const bounded = this.boundArguments(fields);
    return new Promise((resolve, reject) => {
      this.queue.push({ fields: bounded, resolve, reject });
      this.flushing ??= this.flush();
    });
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
        const { line, hash } = sealRecord(fields, seq, prev, this.seal);
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
   * (so start-up does not read a large file), checks the head's own record is still there, sealed
   * as this gateway seals, and indexes records written after it (a crash between write and index),
   * each checked under the seal. A log with records but no index head needs an explicit rebuild.
   */
  private resume(): void {
    const fd = openSync(this.file, 'a+');
    try {
      const head = this.index.head();
      const size = fstatSync(fd).size;
      let from: ChainPosition = CHAIN_START;
      if (head) {
        if (size < head.offset + head.length) {
          throw new Error(`${this.file} ends before record seq ${head.seq} that the audit index holds: records were removed. Run npm run audit:verify`);
        }
        const buffer = Buffer.alloc(head.length - 1);
        readSync(fd, buffer, 0, buffer.length, head.offset);
        const line = buffer.toString('utf8');
        const hash = verifySeal(line, this.seal);
        if (hash === undefined) throw new Error(`${this.file}: record seq ${head.seq}: ${sealProblem(line, this.seal)}. Run npm run audit:verify`);
        if (hash !== head.hash) throw new Error(`${this.file}: record seq ${head.seq} no longer matches the audit index: the file was changed. Run npm run audit:verify`);
        from = { seq: head.seq, hash: head.hash, offset: head.offset + head.length };
      } else if (size > 0) {
        throw new Error(`${this.file} holds records but the audit index ${this.indexFile} is missing or empty. ${REBUILD_HINT}`);
      }
      this.catchUp(fd, from);
    } finally {
      closeSync(fd);
    }
  }

  /** Indexes complete records after `from`; drops a torn last line (a write cut short, never acknowledged). */
  private catchUp(fd: number, from: ChainPosition): void {
    let indexed = 0;
    const scanned = scanChain(fd, from, this.seal, (rows) => {
      this.index.insertBatch(rows);
      indexed += rows.length;
    });
    if (!scanned.ok) throw new Error(`${this.file}: record seq ${scanned.seq}: ${scanned.problem}. Run npm run audit:verify`);
    if (scanned.tornBytes > 0) {
      this.logger.warn(`${this.file}: dropping an incomplete last line of ${scanned.tornBytes} bytes (a write cut short before it was acknowledged)`);
      ftruncateSync(fd, scanned.end.offset);
    }
    if (indexed > 0) this.logger.log(`audit index caught up with ${indexed} record(s) from ${this.file}`);
    this.nextSeq = scanned.end.seq + 1;
    this.lastHash = scanned.end.hash;
    this.offset = scanned.end.offset;
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
