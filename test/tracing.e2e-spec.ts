import { randomBytes } from 'node:crypto';
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { pinMcpTools } from '../src/kinds/mcp/mcp-pin';
import { McpHttpUpstream } from './fixtures/mcp-http-upstream';
import { flushTracing, startTracing, stopTracing, tracingOn } from '../src/telemetry/tracing';
import { envelope, HMAC_AGENT, HMAC_SECRET, MCP_DEPLOY_TOKEN, TestGateway } from './support/test-gateway';

/** One span as OTLP/JSON carries it. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Array<{ key: string; value: { stringValue?: string; intValue?: number | string; boolValue?: boolean } }>;
}

/** A stand-in for an OpenTelemetry collector: a real OTLP/HTTP receiver on 127.0.0.1 that keeps every span it is sent. */
class OtlpReceiver {
  readonly spans: OtlpSpan[] = [];
  readonly serviceNames = new Set<string>();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/v1/traces') {
          const message = JSON.parse(body) as {
            resourceSpans: Array<{ resource?: { attributes?: OtlpSpan['attributes'] }; scopeSpans: Array<{ spans?: OtlpSpan[] }> }>;
          };
          for (const resource of message.resourceSpans) {
            const service = resource.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue;
            if (service) this.serviceNames.add(service);
            for (const scope of resource.scopeSpans) this.spans.push(...(scope.spans ?? []));
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  ofTrace(traceId: string): OtlpSpan[] {
    return this.spans.filter((span) => span.traceId === traceId);
  }
}

/** An http tool's upstream: records the headers of each request. */
class Upstream {
  readonly seen: IncomingMessage['headers'][] = [];
  private server!: Server;
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.seen.push(req.headers);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

function attr(span: OtlpSpan, key: string): unknown {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  if (!value) return undefined;
  return value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : value.boolValue);
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
/** An argument value that must appear in no span. */
const MARKER = 'argument-value-never-traced-7f3a';
const OTEL_VARS = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_SERVICE_NAME', 'OTEL_TRACES_EXPORTER', 'OTEL_SDK_DISABLED'];

/** A gateway with an http tool on `upstream` and an MCP tool on `mcpUpstream` (pinned before it boots). */
function tracedGateway(upstream: Upstream, mcpUpstream: McpHttpUpstream): TestGateway {
  return new TestGateway({
    captureLogs: true,
    extraTools: [
      `  traced_get: { kind: http, roles: [deployer], request: { method: GET, url: "${upstream.base}/echo" }, allowed_hosts: [127.0.0.1], input_schema: { type: object, additionalProperties: true } }`,
      `  tracker_search: { kind: mcp, server: tracker, tool: search, roles: [deployer] }`,
    ].join('\n'),
    mcpServers: `  tracker: { url: "${mcpUpstream.url}", allowed_hosts: [127.0.0.1], timeout_ms: 5000 }`,
    beforeBoot: async (gw) => {
      const report = await pinMcpTools({ ...process.env, GATEWAY_CONFIG: gw.configFile, TEST_DEPLOY_KEY: HMAC_SECRET });
      if (!report.complete) throw new Error(`mcp:pin failed: ${report.lines.join('; ')}`);
    },
  });
}

/** A tools/call at the MCP door as a 2025-11-25 client sends it (the deployer's token unless another is given). */
async function mcpCall(
  gw: TestGateway,
  tool: string,
  args: Record<string, unknown>,
  meta?: Record<string, unknown>,
  opts: { token?: string; traceparent?: string } = {},
): Promise<Response> {
  const url = `http://127.0.0.1:${(gw.app.getHttpServer().address() as AddressInfo).port}/mcp`;
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${opts.token ?? MCP_DEPLOY_TOKEN}`,
      'mcp-protocol-version': '2025-11-25',
      ...(opts.traceparent && { traceparent: opts.traceparent }),
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: args, ...(meta && { _meta: meta }) } }),
  });
}

describe('OpenTelemetry traces', () => {
  const saved = Object.fromEntries(OTEL_VARS.map((name) => [name, process.env[name]]));
  const upstream = new Upstream();
  const receiver = new OtlpReceiver();
  let mcpUpstream: McpHttpUpstream;

  beforeAll(async () => {
    for (const name of OTEL_VARS) delete process.env[name];
    await upstream.start();
    await receiver.start();
    mcpUpstream = await new McpHttpUpstream().start();
  });
  afterAll(async () => {
    await stopTracing();
    await mcpUpstream.stop();
    await upstream.stop();
    await receiver.stop();
    for (const [name, value] of Object.entries(saved))
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
  });

  describe('off: no OTEL_* endpoint set', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      expect(startTracing(process.env)).toBe(false);
      gw = await tracedGateway(upstream, mcpUpstream).start();
    });
    afterAll(() => gw.stop());

    it('makes no span, puts no trace ids on record and propagates nothing, whatever the agent sends', async () => {
      const traceparent = `00-${hex(16)}-${hex(8)}-01`;
      const res = await gw.post('/api/tools/call', envelope(HMAC_AGENT, 'traced_get', { q: MARKER }), HMAC_AGENT, { traceparent });
      expect(res.status).toBe(200);
      expect(tracingOn()).toBe(false);
      await flushTracing();
      expect(receiver.spans).toEqual([]);
      const records = gw.auditRecords().filter((r) => r.audit_id === res.body.audit_id);
      expect(records.length).toBeGreaterThan(0);
      for (const record of records) expect(record).not.toHaveProperty('trace_id');
      expect(upstream.seen[upstream.seen.length - 1]).not.toHaveProperty('traceparent');
      await gw.app.listen(0, '127.0.0.1');
      const mcp = await mcpCall(gw, 'tracker_search', { query: 'off' }, { traceparent });
      expect(await mcp.text()).toContain('"isError":false');
      expect(mcpUpstream.calls[mcpUpstream.calls.length - 1].meta ?? {}).not.toHaveProperty('traceparent');
      const refused = await gw.post('/api/tools/call', envelope(HMAC_AGENT, 'traced_get', {}), HMAC_AGENT, { 'X-Agent-Signature': 'AAAA', traceparent });
      expect(refused.status).toBe(401);
      await flushTracing();
      expect(receiver.spans).toEqual([]);
      expect(gw.logLines.join('\n')).not.toContain('trace_id');
    });
  });

  describe('on: OTEL_EXPORTER_OTLP_ENDPOINT set (an in-process OTLP receiver stands in for a collector)', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      // The SDK's OTLP/HTTP transport loads node:http with import(), which Jest's module sandbox allows only with this flag.
      if (!`${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`.includes('--experimental-vm-modules')) {
        throw new Error('Run this spec with NODE_OPTIONS=--experimental-vm-modules: the OTLP exporter imports node:http dynamically');
      }
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
      process.env.OTEL_SERVICE_NAME = 'agent-gateway-test';
      expect(startTracing(process.env)).toBe(true);
      gw = tracedGateway(upstream, mcpUpstream);
      await gw.start();
      await gw.app.listen(0, '127.0.0.1');
    });
    afterAll(() => gw.stop());

    const STAGES = ['authenticate', 'limit', 'replay', 'policy', 'audit write', 'execute', 'replay settle'];

    it('REST: the call span has the incoming traceparent as parent, a child per stage, no arguments; audit, log and upstream carry the trace', async () => {
      const traceId = hex(16);
      const parentId = hex(8);
      const res = await gw.post('/api/tools/call', envelope(HMAC_AGENT, 'traced_get', { q: MARKER }), HMAC_AGENT, {
        traceparent: `00-${traceId}-${parentId}-01`,
      });
      expect(res.status).toBe(200);
      await flushTracing();

      const spans = receiver.ofTrace(traceId);
      const call = spans.find((span) => span.name === 'execute_tool traced_get')!;
      expect(call).toBeDefined();
      expect(call.parentSpanId).toBe(parentId);
      expect(attr(call, 'gen_ai.operation.name')).toBe('execute_tool');
      expect(attr(call, 'gen_ai.tool.name')).toBe('traced_get');
      expect(attr(call, 'gen_ai.agent.id')).toBe(HMAC_AGENT);
      expect(attr(call, 'agent_gateway.channel')).toBe('rest');
      expect(attr(call, 'agent_gateway.decision')).toBe('allow');
      expect(attr(call, 'agent_gateway.audit_id')).toBe(res.body.audit_id);
      expect(attr(call, 'http.response.status_code')).toBe(200);
      const children = spans.filter((span) => span.parentSpanId === call.spanId).map((span) => span.name);
      expect(children).toEqual(expect.arrayContaining(STAGES));
      expect(receiver.serviceNames).toContain('agent-gateway-test');
      expect(JSON.stringify(spans)).not.toContain(MARKER);

      const records = gw.auditRecords().filter((r) => r.audit_id === res.body.audit_id);
      expect(records.map((r) => r.event)).toEqual(['decision', 'outcome']);
      for (const record of records) expect(record).toMatchObject({ trace_id: traceId, span_id: call.spanId });

      // The upstream's request is a child of the execute stage, in the same trace.
      const execute = spans.find((span) => span.name === 'execute' && span.parentSpanId === call.spanId)!;
      expect(upstream.seen[upstream.seen.length - 1].traceparent).toBe(`00-${traceId}-${execute.spanId}-01`);

      const line = gw.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.reqId === res.body.audit_id);
      expect(line).toMatchObject({ trace_id: traceId, span_id: call.spanId });
    });

    it('MCP: params._meta.traceparent is the parent of the tools/call span; the audit records carry its ids', async () => {
      const traceId = hex(16);
      const parentId = hex(8);
      const res = await mcpCall(gw, 'traced_get', { q: MARKER }, { traceparent: `00-${traceId}-${parentId}-01`, tracestate: 'vendor=1' });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('"isError":false');
      await flushTracing();

      const spans = receiver.ofTrace(traceId);
      const call = spans.find((span) => span.name === 'tools/call traced_get')!;
      expect(call).toBeDefined();
      expect(call.parentSpanId).toBe(parentId);
      expect(attr(call, 'mcp.method.name')).toBe('tools/call');
      expect(attr(call, 'gen_ai.operation.name')).toBe('execute_tool');
      expect(attr(call, 'gen_ai.tool.name')).toBe('traced_get');
      expect(attr(call, 'agent_gateway.channel')).toBe('mcp');
      expect(attr(call, 'agent_gateway.decision')).toBe('allow');
      const children = spans.filter((span) => span.parentSpanId === call.spanId).map((span) => span.name);
      expect(children).toEqual(expect.arrayContaining(['authenticate', 'limit', 'policy', 'audit write', 'execute']));
      expect(JSON.stringify(spans)).not.toContain(MARKER);

      const records = gw.auditRecords().filter((r) => r.trace_id === traceId);
      expect(records.map((r) => r.event)).toEqual(['decision', 'outcome']);
      for (const record of records) expect(record).toMatchObject({ channel: 'mcp', span_id: call.spanId, audit_id: attr(call, 'agent_gateway.audit_id') });
      expect(upstream.seen[upstream.seen.length - 1].traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      // The /mcp request's log line names the call's trace and span.
      const lines = gw.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.trace_id === traceId);
      expect(lines.find((l) => l.msg === 'request completed')).toMatchObject({ req: { method: 'POST', url: '/mcp' }, span_id: call.spanId });
    });

    it('MCP door to an MCP upstream: _meta.traceparent carries the same trace, a child of the execute stage', async () => {
      const traceId = hex(16);
      const res = await mcpCall(gw, 'tracker_search', { query: MARKER }, { traceparent: `00-${traceId}-${hex(8)}-01` });
      expect(await res.text()).toContain('"isError":false');
      await flushTracing();
      const spans = receiver.ofTrace(traceId);
      const call = spans.find((span) => span.name === 'tools/call tracker_search')!;
      const execute = spans.find((span) => span.name === 'execute' && span.parentSpanId === call.spanId)!;
      expect(mcpUpstream.calls[mcpUpstream.calls.length - 1]).toMatchObject({ tool: 'search', meta: { traceparent: `00-${traceId}-${execute.spanId}-01` } });
      expect(JSON.stringify(spans)).not.toContain(MARKER);
    });

    it('an MCP upstream gets _meta.traceparent of the same trace, a child of the execute stage', async () => {
      const traceId = hex(16);
      const res = await gw.post('/api/tools/call', envelope(HMAC_AGENT, 'tracker_search', { query: MARKER }), HMAC_AGENT, {
        traceparent: `00-${traceId}-${hex(8)}-01`,
      });
      expect(res.status).toBe(200);
      await flushTracing();
      const spans = receiver.ofTrace(traceId);
      const call = spans.find((span) => span.name === 'execute_tool tracker_search')!;
      const execute = spans.find((span) => span.name === 'execute' && span.parentSpanId === call.spanId)!;
      const seen = mcpUpstream.calls[mcpUpstream.calls.length - 1];
      expect(seen).toMatchObject({ tool: 'search', meta: { traceparent: `00-${traceId}-${execute.spanId}-01` } });
      expect(JSON.stringify(spans)).not.toContain(MARKER);
    });

    it('MCP: without _meta, the HTTP traceparent header is the parent', async () => {
      const traceId = hex(16);
      const parentId = hex(8);
      const res = await mcpCall(gw, 'list_dir', { path: '.' }, undefined, { traceparent: `00-${traceId}-${parentId}-01` });
      expect(res.status).toBe(200);
      await flushTracing();
      expect(receiver.ofTrace(traceId).find((span) => span.name === 'tools/call list_dir')).toMatchObject({ parentSpanId: parentId });
    });

    it("an approver's decision runs the stored call in a span of its own, with the audit records' ids", async () => {
      const pending = await gw.post('/api/tools/call', envelope(HMAC_AGENT, 'write_file', { path: 'traced.txt', content: MARKER }));
      expect(pending.status).toBe(202);
      const decided = await gw.asApprover().decide(pending.body.approval_id as string, true);
      expect(decided.status).toBe(200);
      await flushTracing();
      const call = receiver.spans.find((span) => attr(span, 'agent_gateway.audit_id') === decided.body.audit_id)!;
      expect(call).toMatchObject({ name: 'execute_tool write_file' });
      expect(attr(call, 'agent_gateway.channel')).toBe('approval');
      expect(attr(call, 'agent_gateway.decision')).toBe('allow');
      const children = receiver.spans.filter((span) => span.parentSpanId === call.spanId).map((span) => span.name);
      expect(children).toEqual(expect.arrayContaining(['audit write', 'policy', 'execute']));
      expect(JSON.stringify(receiver.ofTrace(call.traceId))).not.toContain(MARKER);
      const records = gw.auditRecords().filter((r) => r.audit_id === decided.body.audit_id);
      expect(records.map((r) => r.event)).toEqual(['approval', 'outcome']);
      for (const record of records) expect(record).toMatchObject({ trace_id: call.traceId, span_id: call.spanId });
      // The agent's call that filed it: its own span, the approval request stage, no execute.
      const filed = receiver.spans.find((span) => attr(span, 'agent_gateway.audit_id') === pending.body.audit_id)!;
      expect(attr(filed, 'agent_gateway.decision')).toBe('pending');
      expect(receiver.spans.filter((span) => span.parentSpanId === filed.spanId).map((span) => span.name)).toContain('approval request');
    });

    it('a refused call names its reason code; a call without traceparent starts its own trace', async () => {
      const res = await gw.post('/api/tools/call', envelope(HMAC_AGENT, 'configure', { path: 'x', webhook_url: MARKER }));
      expect(res.status).toBe(403);
      await flushTracing();
      const call = receiver.spans.find((span) => attr(span, 'agent_gateway.audit_id') === res.body.audit_id)!;
      expect(call).toMatchObject({ name: 'execute_tool configure' });
      expect(call.parentSpanId ?? '').toBe('');
      expect(attr(call, 'agent_gateway.decision')).toBe('deny');
      expect(attr(call, 'agent_gateway.reason_code')).toBe('forbidden_field');
      expect(attr(call, 'http.response.status_code')).toBe(403);
      expect(JSON.stringify(receiver.ofTrace(call.traceId))).not.toContain(MARKER);
      expect(gw.auditRecords().find((r) => r.audit_id === res.body.audit_id)).toMatchObject({ trace_id: call.traceId, span_id: call.spanId });
    });

    describe('a request refused before its call began (authentication) has a span of its own', () => {
      /** The one span of the refusal's trace: parented by the request's traceparent, no stage below it, nothing secret in it. */
      async function refusalSpan(traceId: string, parentId: string, secrets: string[]): Promise<OtlpSpan> {
        await flushTracing();
        const spans = receiver.ofTrace(traceId);
        expect(spans).toHaveLength(1);
        expect(spans[0]).toMatchObject({ parentSpanId: parentId });
        for (const secret of [MARKER, ...secrets]) expect(JSON.stringify(spans)).not.toContain(secret);
        return spans[0];
      }

      it.each([
        ['a bad signature', { 'X-Agent-Signature': Buffer.from('x'.repeat(32)).toString('base64') }, 'bad_signature'],
        ['no signature headers', { 'X-Agent-Id': '', 'X-Agent-Timestamp': '', 'X-Agent-Signature': '' }, 'missing_signature'],
      ])('REST, %s: the reason code, the status and the audit id; the audit record and log line carry its ids', async (_label, headers, reasonCode) => {
        const traceId = hex(16);
        const parentId = hex(8);
        const res = await gw.post('/api/tools/call', envelope(HMAC_AGENT, 'traced_get', { q: MARKER }), HMAC_AGENT, {
          ...headers,
          traceparent: `00-${traceId}-${parentId}-01`,
        });
        expect(res.status).toBe(401);
        expect(res.body.reason_code).toBe(reasonCode);
        const span = await refusalSpan(traceId, parentId, [HMAC_SECRET]);
        expect(span.name).toBe('POST /api/tools/call');
        expect(attr(span, 'http.request.method')).toBe('POST');
        expect(attr(span, 'http.route')).toBe('/api/tools/call');
        expect(attr(span, 'http.response.status_code')).toBe(401);
        expect(attr(span, 'agent_gateway.status')).toBe('unauthenticated');
        expect(attr(span, 'agent_gateway.reason_code')).toBe(reasonCode);
        expect(attr(span, 'agent_gateway.audit_id')).toBe(res.body.audit_id);
        // Never authenticated: the agent it claimed to be is not named.
        expect(attr(span, 'gen_ai.agent.id')).toBeUndefined();
        expect(gw.auditRecords().find((r) => r.audit_id === res.body.audit_id)).toMatchObject({
          reason_code: reasonCode,
          trace_id: traceId,
          span_id: span.spanId,
        });
        const line = gw.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.reqId === res.body.audit_id);
        expect(line).toMatchObject({ res: { status: 401 }, trace_id: traceId, span_id: span.spanId });
      });

      it('MCP, an unknown bearer token: the reason code, never the token', async () => {
        const traceId = hex(16);
        const parentId = hex(8);
        const token = `not-a-token-${hex(8)}`;
        const res = await mcpCall(gw, 'traced_get', { q: MARKER }, undefined, { token, traceparent: `00-${traceId}-${parentId}-01` });
        expect(res.status).toBe(401);
        const body = (await res.json()) as { reason_code: string; audit_id: string };
        expect(body.reason_code).toBe('invalid_token');
        const span = await refusalSpan(traceId, parentId, [token]);
        expect(span.name).toBe('POST /mcp');
        expect(attr(span, 'http.response.status_code')).toBe(401);
        expect(attr(span, 'agent_gateway.reason_code')).toBe('invalid_token');
        const line = gw.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.reqId === body.audit_id);
        expect(line).toMatchObject({ res: { status: 401 }, trace_id: traceId, span_id: span.spanId });
      });
    });
  });
});
