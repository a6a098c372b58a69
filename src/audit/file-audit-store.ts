import { closeSync, fdatasync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Logger } from '@nestjs/common';
import { GatewayConfig } from '../config/gateway-config';
import { AuditIndex, AuditQuery, IndexRow } from './audit-index';
import { AuditRecord, AuditSeal, sealProblem, verifySeal } from './audit-record';
import { AuditStore, ChainHead, SealedRecord, StoredLine } from './audit-store';
import { CHAIN_START, ChainPosition, scanChain } from './audit-verify';

const fdatasyncAsync = promisify(fdatasync);

const REBUILD_HINT =
  'Run npm run audit:verify -- --rebuild-index --checkpoint <seq>:<hash>, with the newest "audit checkpoint" of the application log (it checks the whole chain first, and that no records were removed from its end)';

/**
 * The embedded store: one JSONL file (GATEWAY_AUDIT_LOG), each batch one write (and one fsync with
 * settings.audit_fsync), and an index in `<data dir>/audit-index.db` whose newest row is the
 * chain's head kept outside the file. The write is synchronous: appending a few KiB to the page
 * cache costs less than a hop through the libuv thread pool; the fsync, which waits for the disk, is not.
 */
export class FileAuditStore extends AuditStore {
  private readonly logger = new Logger('AuditLog');
  private readonly file: string;
  private readonly indexFile: string;
  private readonly index: AuditIndex;
  private fd?: number;
  /** Where the next line goes: the byte offset just after the last complete record. */
  private offset = 0;

  constructor(private readonly config: GatewayConfig) {
    super();
    this.file = config.paths.auditLog;
    this.indexFile = join(config.paths.dataDir, 'audit-index.db');
    this.index = new AuditIndex(this.indexFile);
  }

  async open(seal: AuditSeal): Promise<ChainHead> {
    mkdirSync(dirname(this.file), { recursive: true });
    const end = this.resume(seal);
    this.offset = end.offset;
    this.fd = openSync(this.file, 'a');
    return { seq: end.seq, hash: end.hash };
  }

  async write(records: SealedRecord[]): Promise<void> {
    const fd = this.fd;
    if (fd === undefined) throw new Error('the audit file is closed');
    let offset = this.offset;
    const rows: IndexRow[] = records.map(({ seq, hash, line, fields }) => {
      const length = Buffer.byteLength(line) + 1;
      const row = { seq, audit_id: fields.audit_id, request_id: fields.request_id ?? null, agent_id: fields.agent_id ?? null, hash, offset, length };
      offset += length;
      return row;
    });
    const data = Buffer.from(`${records.map((r) => r.line).join('\n')}\n`);
    for (let written = 0; written < data.length;) written += writeSync(fd, data, written, data.length - written);
    if (this.config.settings.audit_fsync) await fdatasyncAsync(fd);
    this.index.insertBatch(rows);
    this.offset = offset;
  }

  /** A write cut short leaves the file's tail unknown: only a restart, which re-reads it, can continue. */
  async reopen(): Promise<undefined> {
    return undefined;
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

  /** The lines the index holds after `seq` (each write is indexed once it is in the file), read in one piece. */
  async readAfter(seq: number, limit: number): Promise<StoredLine[]> {
    const rows = this.index.after(seq, limit);
    if (rows.length === 0) return [];
    const start = rows[0].offset;
    const buffer = Buffer.alloc(rows[rows.length - 1].offset + rows[rows.length - 1].length - start);
    const reader = await open(this.file, 'r');
    try {
      await reader.read(buffer, 0, buffer.length, start);
    } finally {
      await reader.close();
    }
    return rows.map((row) => ({ seq: row.seq, line: buffer.toString('utf8', row.offset - start, row.offset - start + row.length - 1) }));
  }

  async lastSeq(): Promise<number> {
    return this.index.head()?.seq ?? 0;
  }

  async close(): Promise<void> {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.index.close();
  }

  /**
   * Continues the chain from the file's last record. Reads only what follows the index's head
   * (so start-up does not read a large file), checks the head's own record is still there, sealed
   * as this gateway seals, and indexes records written after it (a crash between write and index),
   * each checked under the seal. A log with records but no index head needs an explicit rebuild.
   */
  private resume(seal: AuditSeal): ChainPosition {
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
        const hash = verifySeal(line, seal);
        if (hash === undefined) throw new Error(`${this.file}: record seq ${head.seq}: ${sealProblem(line, seal)}. Run npm run audit:verify`);
        if (hash !== head.hash)
          throw new Error(`${this.file}: record seq ${head.seq} no longer matches the audit index: the file was changed. Run npm run audit:verify`);
        from = { seq: head.seq, hash: head.hash, offset: head.offset + head.length };
      } else if (size > 0) {
        throw new Error(`${this.file} holds records but the audit index ${this.indexFile} is missing or empty. ${REBUILD_HINT}`);
      }
      return this.catchUp(fd, from, seal);
    } finally {
      closeSync(fd);
    }
  }

  /** Indexes complete records after `from`; drops a torn last line (a write cut short, never acknowledged). */
  private catchUp(fd: number, from: ChainPosition, seal: AuditSeal): ChainPosition {
    let indexed = 0;
    const scanned = scanChain(fd, from, seal, (rows) => {
      this.index.insertBatch(rows);
      indexed += rows.length;
    });
    if (!scanned.ok) throw new Error(`${this.file}: record seq ${scanned.seq}: ${scanned.problem}. Run npm run audit:verify`);
    if (scanned.tornBytes > 0) {
      this.logger.warn(`${this.file}: dropping an incomplete last line of ${scanned.tornBytes} bytes (a write cut short before it was acknowledged)`);
      ftruncateSync(fd, scanned.end.offset);
    }
    if (indexed > 0) this.logger.log(`audit index caught up with ${indexed} record(s) from ${this.file}`);
    return scanned.end;
  }
}
