import { fetch, Response } from 'undici';
import { ArgumentsInvalid, PolicyDenied, ToolFailed } from '../../core/errors';
import type { Tool } from '../../config/gateway-config';
import { URL_PLACEHOLDER } from './http-config';
import { SecretStore } from '../../secrets/secret-store';
import { EgressPools, fillSecrets, isAllowedTarget } from '../egress/egress';
import { injectTraceHeaders } from '../../telemetry/tracing';

export const MAX_RESPONSE_BYTES = 1024 * 1024;
const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const RESULT_HEADERS = ['content-type', 'content-length', 'etag', 'last-modified', 'retry-after', 'location'];

interface PreparedRequest {
  url: URL;
  body?: string;
}

function hostNotAllowed(host: string, via = ''): PolicyDenied {
  return new PolicyDenied('host_not_allowed', `${via}Host "${host}" is not allowed for this tool`);
}

// `.` or `..`, also percent-encoded: the URL parser drops such a segment or climbs one up for it.
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/** The path segments of an http(s) URL string as written (encoded values hold no slash, backslash, `?` or `#`). */
function rawPathSegments(url: string): string[] {
  return url
    .replace(/^[a-z][a-z\d+.-]*:\/\/[^/\\?#]*/i, '')
    .split(/[?#]/, 1)[0]
    .split(/[/\\]/);
}

/**
 * Each path segment with a placeholder must stay one segment in the URL that is sent: a value may
 * not make it `.` or `..` (`owner: ".."` must not turn /repos/{owner}/{repo}/issues into /issues).
 */
function refuseDotSegments(template: string, fill: (segment: string) => string): void {
  for (const segment of rawPathSegments(template)) {
    const name = [...segment.matchAll(URL_PLACEHOLDER)][0]?.[1];
    if (name !== undefined && DOT_SEGMENT.test(fill(segment))) {
      throw new ArgumentsInvalid([{ instancePath: `/${name}`, message: 'must not make a "." or ".." segment of the URL path' }]);
    }
  }
}

/**
 * The `http` tool kind: a URL built from the template and the arguments, checked
 * against allowed_hosts after it is built; secrets injected into headers here, at the last moment.
 */
export class HttpToolRunner {
  private readonly pools = new EgressPools();

  constructor(private readonly secrets: SecretStore) {}

  /** Row 12: what would be requested, or 403 host_not_allowed / 400 invalid_arguments. No network, no secrets. */
  prepare(tool: Tool, args: Record<string, unknown>): PreparedRequest {
    const request = tool.request!;
    const used = new Set<string>();
    const fill = (template: string) =>
      template.replace(URL_PLACEHOLDER, (_m, name: string) => {
        const value = args[name];
        if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
          throw new ArgumentsInvalid([{ instancePath: `/${name}`, message: 'must be a string, number or boolean (used in the URL)' }]);
        }
        used.add(name);
        return encodeURIComponent(String(value));
      });
    const filled = fill(request.url);
    refuseDotSegments(request.url, fill);
    let url: URL;
    try {
      url = new URL(filled);
    } catch {
      throw new PolicyDenied('host_not_allowed', 'The arguments do not make a valid URL');
    }
    this.checkHost(tool, url);
    const rest = Object.fromEntries(Object.entries(args).filter(([name]) => !used.has(name)));
    if (request.method === 'GET' || request.method === 'DELETE') {
      for (const [name, value] of Object.entries(rest)) url.searchParams.append(name, typeof value === 'string' ? value : JSON.stringify(value));
      return { url };
    }
    return { url, body: JSON.stringify(rest) };
  }

  async run(tool: Tool, args: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>> {
    const { url, body } = this.prepare(tool, args);
    const headers = await this.headers(tool);
    injectTraceHeaders(headers);
    let method: string = tool.request!.method;
    let current = url;
    let payload = body;
    for (let hop = 0; ; hop++) {
      const response = await this.send(tool, current, method, headers, payload, signal);
      const location = response.headers.get('location');
      if (!REDIRECTS.has(response.status) || location === null) return this.result(response, signal);
      await response.body?.cancel();
      if (hop === MAX_REDIRECTS) throw new ToolFailed(`More than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, current);
      this.checkHost(tool, next, 'Redirect refused: ');
      // Credentials were meant for the original origin only.
      if (next.origin !== current.origin) {
        for (const [name, template] of Object.entries(tool.request!.headers)) if (template.includes('${secret:')) delete headers[name];
      }
      if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
        method = 'GET';
        payload = undefined;
      }
      current = next;
    }
  }

  async close(): Promise<void> {
    await this.pools.close();
  }

  private checkHost(tool: Tool, url: URL, via = ''): void {
    if (!isAllowedTarget(url, tool.allowed_hosts!))
      throw hostNotAllowed(url.protocol === 'http:' || url.protocol === 'https:' ? url.hostname : url.protocol, via);
  }

  private async headers(tool: Tool): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const [name, template] of Object.entries(tool.request!.headers)) out[name] = await fillSecrets(template, this.secrets);
    return out;
  }

  private async send(tool: Tool, url: URL, method: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal): Promise<Response> {
    const dispatcher = this.pools.for(url, tool.allow_private_networks);
    try {
      return await fetch(url, {
        method,
        headers: { ...(body !== undefined && { 'content-type': 'application/json' }), accept: 'application/json, */*', ...headers },
        body,
        redirect: 'manual',
        signal,
        dispatcher,
      });
    } catch (err) {
      if (signal.aborted) throw err;
      const code = ((err as { cause?: NodeJS.ErrnoException }).cause ?? (err as NodeJS.ErrnoException)).code;
      if (code === 'EINTERNALADDRESS') throw new PolicyDenied('host_not_allowed', `Host "${url.hostname}" resolves to an internal address`);
      throw new ToolFailed(`Could not reach ${url.hostname}${code ? ` (${code})` : ''}`);
    }
  }

  private async result(response: Response, signal: AbortSignal): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    let size = 0;
    if (response.body) {
      for await (const chunk of response.body) {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          await response.body.cancel().catch(() => undefined);
          throw new ToolFailed('Upstream response is larger than 1 MiB');
        }
        chunks.push(Buffer.from(chunk));
        signal.throwIfAborted();
      }
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const contentType = response.headers.get('content-type') ?? '';
    let body: unknown = text;
    if (/\bjson\b/i.test(contentType) && text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON after all: keep the text
      }
    }
    const headers = Object.fromEntries(RESULT_HEADERS.flatMap((name) => (response.headers.has(name) ? [[name, response.headers.get(name)!]] : [])));
    return { status: response.status, headers, body };
  }
}
