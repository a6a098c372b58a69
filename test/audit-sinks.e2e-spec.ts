import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, IncomingHttpHeaders, Server as HttpServer } from 'node:http';
import { AddressInfo, createServer as createTcpServer, Server as TcpServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { Pool } from 'pg';
import { eventually } from './support/eventually';
import { createTestDatabase, dropTestDatabase, serversFor } from './support/services';
import { TestGateway } from './support/test-gateway';

/** One RFC 5424 message as a collector parses it. */
interface SyslogMessage {
  pri: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  msg: string;
}

const RFC5424 = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) - (.*)$/s;

/**
 * A syslog collector stand-in: RFC 5424 messages in octet-counted frames (RFC 6587, RFC 5425) over
 * TCP, or TLS when given a key and certificate. `stop()` goes away as a crashed collector does
 * (listener closed, connections reset); `start()` comes back on the same port.
 */
class SyslogReceiver {
  readonly messages: SyslogMessage[] = [];
  readonly problems: string[] = [];
  port = 0;
  private server?: TcpServer;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly tls?: { key: Buffer; cert: Buffer }) {}

  get lines(): string[] {
    return this.messages.map((m) => m.msg);
  }

  async start(): Promise<this> {
    const server = this.tls ? createTlsServer(this.tls, (s) => this.accept(s)) : createTcpServer((s) => this.accept(s));
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    const closed = new Promise((resolve) => this.server?.close(resolve));
    this.sockets.forEach((s) => s.destroy());
    await closed;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const space = buffered.indexOf(0x20);
        if (space === -1) return;
        const count = buffered.subarray(0, space).toString('latin1');
        if (!/^[1-9][0-9]{0,8}$/.test(count)) {
          this.problems.push(`not an octet count: ${JSON.stringify(count.slice(0, 20))}`);
          socket.destroy();
          return;
        }
        const end = space + 1 + Number(count);
        if (buffered.length < end) return;
        const text = buffered.subarray(space + 1, end).toString('utf8');
        buffered = buffered.subarray(end);
        const m = RFC5424.exec(text);
        if (!m) this.problems.push(`not RFC 5424: ${text.slice(0, 80)}`);
        else this.messages.push({ pri: Number(m[1]), timestamp: m[2], hostname: m[3], appName: m[4], procId: m[5], msgId: m[6], msg: m[7] });
      }
    });
  }
}

/**
 * An HTTP receiver (NDJSON batches, or an OTLP/HTTP logs collector stand-in at /v1/logs): `mode`
 * 'ok' answers 200, 'fail' 503, 'hang' never answers.
 */
class HttpReceiver {
  /** Requests answered 200, and those received but never answered ('hang'). */
  readonly requests: Array<{ path: string; headers: IncomingHttpHeaders; body: string }> = [];
  readonly unanswered: Array<{ path: string; headers: IncomingHttpHeaders; body: string }> = [];
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  port = 0;
  private server?: HttpServer;

  async start(): Promise<this> {
    this.server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (this.mode === 'hang') return void this.unanswered.push({ path: req.url ?? '', headers: req.headers, body });
        if (this.mode === 'fail') return void res.writeHead(503).end();
        this.requests.push({ path: req.url ?? '', headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  /** NDJSON: every line of every batch received. */
  get ndjsonLines(): string[] {
    return this.requests.flatMap((r) => r.body.split('\n').filter(Boolean));
  }

  /** OTLP logs: every log record received. */
  get otlpRecords(): Array<Record<string, unknown> & { body: { stringValue: string } }> {
    return this.requests.flatMap((r) => JSON.parse(r.body).resourceLogs.flatMap((rl: any) => rl.scopeLogs.flatMap((sl: any) => sl.logRecords)));
  }
}

function selfSignedCertificate(dir: string): { key: Buffer; cert: Buffer; certFile: string } {
  const [keyFile, certFile] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(keyFile), cert: readFileSync(certFile), certFile };
}

async function lagOf(gw: TestGateway, sink: string): Promise<number | undefined> {
  const res = await gw.http().get('/metrics');
  const m = new RegExp(`^gateway_audit_sink_lag_records\\{sink="${sink}"\\} (\\d+)$`, 'm').exec(res.text);
  return m ? Number(m[1]) : undefined;
}

async function acknowledged(gw: TestGateway, sinks: string[]): Promise<void> {
  for (const sink of sinks)
    expect(
      await eventually(
        () => lagOf(gw, sink),
        (lag) => lag === 0,
      ),
    ).toBe(0);
}

async function calls(gw: TestGateway, n: number): Promise<void> {
  for (let i = 0; i < n; i++) expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200);
}

jest.setTimeout(60_000);

const postgres = serversFor('the PostgreSQL half of the audit sinks suite', { postgres: true });
const backends: Array<[string, boolean]> = [['the audit file', false], ...(postgres ? [['PostgreSQL', true] as [string, boolean]] : [])];

describe.each(backends)('audit_sinks, with the chain in %s', (_label, usePostgres) => {
  const dir = mkdtempSync(join(tmpdir(), 'audit-sinks-'));
  const tlsFiles = selfSignedCertificate(dir);
  const tokenFile = join(dir, 'sink-token');
  const syslog = new SyslogReceiver();
  const syslogTls = new SyslogReceiver(tlsFiles);
  const untrusted = new SyslogReceiver(tlsFiles);
  const ndjson = new HttpReceiver();
  const otlp = new HttpReceiver();
  let databaseUrl: string | undefined;
  let pool: Pool | undefined;
  let gw: TestGateway;

  /** The chain's lines as the store holds them, in seq order: what every sink must receive. */
  async function chain(): Promise<string[]> {
    if (pool) return (await pool.query<{ line: string }>('SELECT line FROM audit_records ORDER BY seq')).rows.map((r) => r.line);
    return readFileSync(gw.auditFile, 'utf8').split('\n').filter(Boolean);
  }

  beforeAll(async () => {
    writeFileSync(tokenFile, 'sink-token-1\n');
    await Promise.all([syslog.start(), syslogTls.start(), untrusted.start(), ndjson.start(), otlp.start()]);
    if (usePostgres) {
      databaseUrl = await createTestDatabase();
      pool = new Pool({ connectionString: databaseUrl, max: 2 });
    }
    const common = 'batch_size: 5, max_backoff_s: 1, timeout_ms: 2000';
    const sinks = `
audit_sinks:
  - { name: siem, type: syslog, host: 127.0.0.1, port: ${syslog.port}, ${common} }
  - { name: siem_tls, type: syslog, host: 127.0.0.1, port: ${syslogTls.port}, tls: { ca_file: "${tlsFiles.certFile}" }, ${common} }
  - { name: siem_untrusted, type: syslog, host: 127.0.0.1, port: ${untrusted.port}, tls: {}, ${common} }
  - name: lake
    type: http
    url: "http://127.0.0.1:${ndjson.port}/ingest"
    allowed_hosts: ["127.0.0.1"]
    headers: { Authorization: "Bearer \${secret:SINK_TOKEN}" }
    ${common.replace(/, /g, '\n    ')}
  - { name: otel, type: otlp, url: "http://127.0.0.1:${otlp.port}/v1/logs", allowed_hosts: ["127.0.0.1"], service_name: gw-test, ${common} }
`;
    gw = await new TestGateway({
      databaseUrl,
      instanceId: usePostgres ? 'gw-sinks' : undefined,
      secrets: `  SINK_TOKEN: { from: file, path: "${tokenFile}" }`,
      beforeBoot: (g) => appendFileSync(g.configFile, sinks),
    }).start();
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hi');
  });

  afterAll(async () => {
    await gw?.stop();
    await Promise.all([syslog.stop(), syslogTls.stop(), untrusted.stop(), ndjson.stop(), otlp.stop()]);
    await pool?.end();
    if (databaseUrl) await dropTestDatabase(databaseUrl);
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams every record, as written and in order, to syslog over TCP and TLS, HTTP NDJSON and OTLP logs', async () => {
    await calls(gw, 12);
    // Arguments beyond ASCII: frames are counted in octets.
    await gw.call('read_file', { path: 'naïve ✓ 文件.txt' });
    const written = await chain();
    expect(written.length).toBeGreaterThanOrEqual(24);
    await eventually(
      async () => [syslog.lines.length, syslogTls.lines.length, ndjson.ndjsonLines.length, otlp.otlpRecords.length],
      (counts) => counts.every((n) => n >= written.length),
    );
    expect(syslog.lines).toEqual(written);
    expect(syslogTls.lines).toEqual(written);
    expect(ndjson.ndjsonLines).toEqual(written);
    expect(otlp.otlpRecords.map((r) => r.body.stringValue)).toEqual(written);
    expect(syslog.problems).toEqual([]);

    // Each syslog message: facility 13 (log audit), severity 6; its timestamp, MSGID and PROCID from the record.
    const records = written.map((line) => JSON.parse(line));
    syslog.messages.forEach((m, i) => {
      expect(m).toMatchObject({ pri: 13 * 8 + 6, timestamp: records[i].ts, appName: 'agent-gateway', procId: records[i].instance_id, msgId: records[i].event });
    });
    // Batches are bounded by batch_size.
    for (const r of ndjson.requests) expect(r.body.split('\n').filter(Boolean).length).toBeLessThanOrEqual(5);
    expect(ndjson.requests[0].headers).toMatchObject({ 'content-type': 'application/x-ndjson', authorization: 'Bearer sink-token-1' });
    expect(otlp.requests[0].path).toBe('/v1/logs');
    const body = JSON.parse(otlp.requests[0].body);
    expect(body.resourceLogs[0].resource.attributes).toEqual(
      expect.arrayContaining([
        { key: 'service.name', value: { stringValue: 'gw-test' } },
        { key: 'service.instance.id', value: { stringValue: records[0].instance_id } },
      ]),
    );
    expect(otlp.otlpRecords[0]).toMatchObject({
      timeUnixNano: `${Date.parse(records[0].ts)}000000`,
      attributes: expect.arrayContaining([{ key: 'agent_gateway.audit.seq', value: { intValue: String(records[0].seq) } }]),
    });
    // A TLS sink without the receiver's CA never sends to it; its lag shows what it holds back.
    expect(untrusted.messages).toEqual([]);
    expect(await lagOf(gw, 'siem_untrusted')).toBe(written.length);
    // The cursor moves once a batch is acknowledged (syslog: once the connection outlived it briefly).
    expect(
      await eventually(
        () => lagOf(gw, 'siem'),
        (lag) => lag === 0,
      ),
    ).toBe(0);
  });

  it('reads header secrets at each send', async () => {
    writeFileSync(tokenFile, 'sink-token-2\n');
    await calls(gw, 1);
    const written = await chain();
    await eventually(
      async () => ndjson.ndjsonLines.length,
      (n) => n >= written.length,
    );
    expect(ndjson.requests[ndjson.requests.length - 1].headers.authorization).toBe('Bearer sink-token-2');
  });

  it('gives a syslog collector that was down every record it missed, exactly once, and shows the backlog as lag meanwhile', async () => {
    // Everything so far acknowledged (a batch cut off before it settles is sent again: at least once).
    await eventually(
      () => lagOf(gw, 'siem'),
      (lag) => lag === 0,
    );
    await syslog.stop();
    ndjson.mode = 'fail';
    const before = (await chain()).length;
    await calls(gw, 6);
    const written = await chain();
    const missed = written.length - before;
    expect(missed).toBeGreaterThanOrEqual(12);
    expect(
      await eventually(
        () => lagOf(gw, 'siem'),
        (lag) => lag === missed,
      ),
    ).toBe(missed);
    expect(
      await eventually(
        () => lagOf(gw, 'lake'),
        (lag) => lag === missed,
      ),
    ).toBe(missed);
    expect(
      await eventually(
        () => lagOf(gw, 'otel'),
        (lag) => lag === 0,
      ),
    ).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a few failed attempts

    await syslog.start();
    ndjson.mode = 'ok';
    await eventually(
      async () => [syslog.lines.length, ndjson.ndjsonLines.length],
      (n) => n.every((c) => c >= written.length),
    );
    expect(syslog.lines).toEqual(written);
    expect(ndjson.ndjsonLines).toEqual(written);
    expect(
      await eventually(
        () => lagOf(gw, 'siem'),
        (lag) => lag === 0,
      ),
    ).toBe(0);
  });

  it('resumes from the durable cursor after a restart: nothing is lost, and nothing already acknowledged is sent again', async () => {
    await acknowledged(gw, ['siem', 'siem_tls', 'lake', 'otel']);
    await gw.restart();
    await calls(gw, 2);
    let written = await chain();
    await eventually(
      async () => [syslog.lines.length, otlp.otlpRecords.length],
      (n) => n.every((c) => c >= written.length),
    );
    expect(syslog.lines).toEqual(written);
    expect(otlp.otlpRecords.map((r) => r.body.stringValue)).toEqual(written);

    // Down across a restart: what was written before and after the restart arrives once it is back.
    await eventually(
      () => lagOf(gw, 'siem'),
      (lag) => lag === 0,
    );
    await syslog.stop();
    await calls(gw, 3);
    await gw.restart();
    await calls(gw, 3);
    written = await chain();
    const missed = written.length - syslog.lines.length;
    expect(missed).toBeGreaterThanOrEqual(12);
    expect(
      await eventually(
        () => lagOf(gw, 'siem'),
        (lag) => lag === missed,
      ),
    ).toBe(missed);
    await syslog.start();
    await eventually(
      async () => syslog.lines.length,
      (n) => n >= written.length,
    );
    expect(syslog.lines).toEqual(written);
    expect(syslogTls.lines).toEqual(written);
    expect(ndjson.ndjsonLines).toEqual(written);
    // A restart while a batch is on its way: the receiver took it but never answered, so the
    // restarted gateway sends it again. That batch (at most batch_size records) arrives twice; nothing is lost.
    ndjson.mode = 'hang';
    await calls(gw, 2);
    await eventually(
      async () => ndjson.unanswered.length,
      (n) => n === 1,
    );
    const cutOff = ndjson.unanswered[0].body.split('\n').filter(Boolean);
    expect(cutOff.length).toBeGreaterThan(0);
    expect(cutOff.length).toBeLessThanOrEqual(5);
    await gw.restart();
    ndjson.mode = 'ok';
    await calls(gw, 1);
    written = await chain();
    await eventually(
      async () => ndjson.ndjsonLines.length,
      (n) => n >= written.length,
    );
    expect(ndjson.ndjsonLines).toEqual(written);
    const received = [...ndjson.unanswered.flatMap((r) => r.body.split('\n').filter(Boolean)), ...ndjson.ndjsonLines];
    expect(received.length - new Set(received).size).toBe(cutOff.length);
  });
});

describe('a sink that never answers', () => {
  const stuck = new HttpReceiver();
  let gw: TestGateway;

  beforeAll(async () => {
    stuck.mode = 'hang';
    await stuck.start();
    const sinks = `
audit_sinks:
  - { name: stuck, type: http, url: "http://127.0.0.1:${stuck.port}/", allowed_hosts: ["127.0.0.1"], timeout_ms: 120000 }
`;
    gw = await new TestGateway({ beforeBoot: (g) => appendFileSync(g.configFile, sinks) }).start();
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hi');
  });

  afterAll(async () => {
    await gw?.stop();
    await stuck.stop();
  });

  it('does not slow a call: calls are answered while the sink holds its first batch', async () => {
    await calls(gw, 1);
    expect(
      await eventually(
        async () => stuck.unanswered.length,
        (n) => n === 1,
      ),
    ).toBe(1);
    const took: number[] = [];
    for (let i = 0; i < 20; i++) {
      const start = performance.now();
      expect((await gw.call('read_file', { path: 'hello.txt' })).status).toBe(200);
      took.push(performance.now() - start);
    }
    took.sort((a, b) => a - b);
    // The sink's own timeout is 120 s: a call that waited for it would take that long.
    expect(took[took.length - 1]).toBeLessThan(2000);
    expect(stuck.unanswered).toHaveLength(1);
    expect(await lagOf(gw, 'stuck')).toBe(gw.auditRecords().length);
  });
});

describe('audit_sinks in the config', () => {
  const refuses = async (sinks: string, problem: RegExp) => {
    const gw = new TestGateway({ beforeBoot: (g) => appendFileSync(g.configFile, `audit_sinks:\n${sinks}\n`) });
    await expect(gw.start()).rejects.toThrow(problem);
    await gw.stop();
  };

  it('refuses a URL whose host is not in allowed_hosts, a duplicate name, an undeclared secret and an unknown type', async () => {
    await refuses(
      '  - { name: a, type: http, url: "http://10.0.0.1/", allowed_hosts: [example.com] }',
      /audit_sinks\[0\]\.url: host "10.0.0.1" is not in allowed_hosts/,
    );
    await refuses(
      '  - { name: a, type: syslog, host: 127.0.0.1, port: 514 }\n  - { name: a, type: syslog, host: 127.0.0.1, port: 515 }',
      /audit_sinks\[1\]\.name: duplicate sink name "a"/,
    );
    await refuses(
      '  - { name: a, type: otlp, url: "http://127.0.0.1/v1/logs", allowed_hosts: [127.0.0.1], headers: { x-key: "${secret:NOPE}" } }',
      /audit_sinks\[0\]\.headers\.x-key: secret "NOPE" is not declared/,
    );
    await refuses('  - { name: a, type: kafka }', /audit_sinks\[0\]: unsupported type "kafka"/);
  });
});
