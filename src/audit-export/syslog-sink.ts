import { readFile } from 'node:fs/promises';
import { connect as connectTcp, isIP, Socket } from 'node:net';
import { hostname } from 'node:os';
import { connect as connectTls } from 'node:tls';
import type { AuditSinkConfig } from '../config/gateway-config';
import type { StoredLine } from '../audit/audit-store';
import { publicOnlyLookup } from '../kinds/egress/egress';
import { AuditSink, networkProblem, recordMeta, SinkFailed } from './audit-sink';

type SyslogConfig = Extract<AuditSinkConfig, { type: 'syslog' }>;

/**
 * Plain syslog has no acknowledgement: a batch counts as delivered once the kernel took it and the
 * connection is still up a while after: four round trips (as the TCP handshake measured), at least
 * 20 ms, at most 1 s. A receiver that went away has reset the connection by then, and the batch is
 * sent again on a new one.
 */
export function settleMs(handshakeMs: number): number {
  return Math.min(1000, Math.max(20, Math.ceil(4 * handshakeMs)));
}
const SEVERITY_INFORMATIONAL = 6;
/** RFC 5424 HOSTNAME: printable US-ASCII, at most 255; NILVALUE otherwise. */
const HOSTNAME = /^[!-~]{1,255}$/.test(hostname()) ? hostname() : '-';
const PROCID = /^[!-~]{1,128}$/;
const MSGID = /^[!-~]{1,32}$/;

/** One record as an RFC 5424 message: the record's line, as written, is the MSG; MSGID its event, PROCID the instance. */
export function syslogMessage(line: string, facility: number, appName: string): string {
  const meta = recordMeta(line);
  const field = (value: string | undefined, rule: RegExp) => (value !== undefined && rule.test(value) ? value : '-');
  return `<${facility * 8 + SEVERITY_INFORMATIONAL}>1 ${meta.ts} ${HOSTNAME} ${appName} ${field(meta.instance_id, PROCID)} ${field(meta.event, MSGID)} - ${line}`;
}

/** RFC 6587 / RFC 5425 octet counting: "<length> <message>", so a message may hold any byte. */
export function octetCounted(message: string): string {
  return `${Buffer.byteLength(message)} ${message}`;
}

/** Syslog over TCP, or TLS when `tls` is set (RFC 5425), one long-lived connection re-made after any failure. */
export class SyslogSink implements AuditSink {
  private socket?: Socket;
  /** Bumped whenever the connection ends: a batch whose connection ended before it settled was not delivered. */
  private generation = 0;
  private settle = settleMs(0);

  constructor(private readonly config: SyslogConfig) {}

  async send(records: readonly StoredLine[], signal: AbortSignal): Promise<void> {
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.config.timeout_ms)]);
    const socket = this.socket ?? (await this.connect(deadline));
    const generation = this.generation;
    const frames = records.map((r) => octetCounted(syslogMessage(r.line, this.config.facility, this.config.app_name))).join('');
    try {
      await new Promise<void>((resolve, reject) => {
        const abort = () => reject(new SinkFailed('no answer in time'));
        deadline.addEventListener('abort', abort, { once: true });
        socket.write(frames, (err) => {
          deadline.removeEventListener('abort', abort);
          if (err) reject(err);
          else resolve();
        });
      });
      await new Promise((resolve) => setTimeout(resolve, this.settle));
    } catch (err) {
      this.drop(socket);
      throw new SinkFailed(networkProblem(err));
    }
    if (generation !== this.generation || socket.destroyed) throw new SinkFailed('the receiver closed the connection');
  }

  async close(): Promise<void> {
    if (this.socket) this.drop(this.socket);
  }

  private async connect(deadline: AbortSignal): Promise<Socket> {
    const { host, port, tls, allow_private_networks } = this.config;
    // A listed IP literal is the operator's explicit choice; a name must resolve to public addresses unless allowed.
    const lookup = allow_private_networks || isIP(host) !== 0 ? undefined : publicOnlyLookup;
    let ca: Buffer | undefined;
    if (tls?.ca_file) {
      try {
        ca = await readFile(tls.ca_file);
      } catch (err) {
        throw new SinkFailed(`tls.ca_file cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    let started = performance.now();
    const socket = tls
      ? connectTls({ host, port, lookup, ca, servername: tls.server_name ?? (isIP(host) === 0 ? host : undefined) })
      : connectTcp({ host, port, lookup });
    // The TCP handshake alone (after any DNS lookup, before TLS's own round trips): one round trip.
    socket.once('lookup', () => (started = performance.now()));
    socket.once('connect', () => (this.settle = settleMs(performance.now() - started)));
    try {
      await new Promise<void>((resolve, reject) => {
        const abort = () => reject(new SinkFailed('no answer in time'));
        deadline.addEventListener('abort', abort, { once: true });
        socket.once(tls ? 'secureConnect' : 'connect', () => {
          deadline.removeEventListener('abort', abort);
          resolve();
        });
        socket.once('error', (err: Error) => {
          deadline.removeEventListener('abort', abort);
          reject(err);
        });
      });
    } catch (err) {
      socket.destroy();
      throw new SinkFailed(networkProblem(err));
    }
    socket.setKeepAlive(true, 10_000);
    socket.setNoDelay(true);
    // The receiver says nothing back; whatever it sends is read and dropped so its buffer never fills.
    socket.on('data', () => undefined);
    socket.on('error', () => this.drop(socket));
    socket.on('close', () => this.drop(socket));
    socket.on('end', () => this.drop(socket));
    this.socket = socket;
    return socket;
  }

  private drop(socket: Socket): void {
    if (this.socket === socket) {
      this.socket = undefined;
      this.generation += 1;
    }
    socket.destroy();
  }
}
