import { fetch } from 'undici';
import type { AuditSinkConfig } from '../config/gateway-config';
import { urlProblem } from '../config/url-rules';
import type { StoredLine } from '../audit/audit-store';
import { EgressPools, fillSecrets } from '../kinds/egress/egress';
import type { SecretStore } from '../secrets/secret-store';
import { AuditSink, networkProblem, SinkFailed } from './audit-sink';

type UrlSinkConfig = Extract<AuditSinkConfig, { type: 'http' | 'otlp' }>;

/** How a batch becomes one request body. */
export interface BatchEncoding {
  contentType: string;
  encode(records: readonly StoredLine[]): string;
  /** What a 2xx answer says was not taken, if anything (logged, not retried). */
  rejected?(answer: string): string | undefined;
}

/** The most of a receiver's answer that is read (an OTLP partial-success note); the rest is dropped. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** Newline-delimited JSON: each record's line as written, one per line. */
export const NDJSON: BatchEncoding = {
  contentType: 'application/x-ndjson',
  encode: (records) => records.map((r) => `${r.line}\n`).join(''),
};

/**
 * One POST per batch to an HTTP receiver: the url's host must be one of allowed_hosts, checked at
 * load and before each send; names must resolve to public addresses unless allow_private_networks.
 * Header values have their ${secret:NAME} read at each send. Redirects are not followed.
 */
export class HttpBatchSink implements AuditSink {
  private readonly pools = new EgressPools();

  constructor(
    private readonly config: UrlSinkConfig,
    private readonly encoding: BatchEncoding,
    private readonly secrets: SecretStore,
    private readonly warn: (message: string) => void,
  ) {}

  async send(records: readonly StoredLine[], signal: AbortSignal): Promise<void> {
    const refused = urlProblem(this.config.url, this.config.allowed_hosts);
    if (refused) throw new SinkFailed(`not sent: ${refused}`);
    const url = new URL(this.config.url);
    const headers: Record<string, string> = { 'content-type': this.encoding.contentType };
    for (const [name, template] of Object.entries(this.config.headers)) {
      try {
        headers[name.toLowerCase()] = await fillSecrets(template, this.secrets);
      } catch {
        throw new SinkFailed(`a secret of header ${name} is not available`);
      }
    }
    let response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers,
        body: this.encoding.encode(records),
        redirect: 'manual',
        dispatcher: this.pools.for(url, this.config.allow_private_networks),
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.config.timeout_ms)]),
      });
    } catch (err) {
      throw new SinkFailed(networkProblem(err));
    }
    const answer = await startOfBody(response.body);
    if (response.status < 200 || response.status > 299) throw new SinkFailed(`HTTP ${response.status}`);
    const rejected = this.encoding.rejected?.(answer);
    if (rejected) this.warn(rejected);
  }

  async close(): Promise<void> {
    await this.pools.close();
  }
}

/** The first MAX_ANSWER_BYTES of an answer, as text; the rest is never read. */
async function startOfBody(body: ReadableStream<Uint8Array> | null): Promise<string> {
  if (!body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(Buffer.from(chunk));
      size += chunk.byteLength;
      if (size >= MAX_ANSWER_BYTES) break;
    }
  } catch {
    // an answer cut short still acknowledged by its status
  }
  return Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8');
}
