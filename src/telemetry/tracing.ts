import type * as Api from '@opentelemetry/api';
import type { Attributes, ContextAPI, Span, TextMapPropagator, Tracer } from '@opentelemetry/api';
import type * as Core from '@opentelemetry/core';
import type * as OtlpHttp from '@opentelemetry/exporter-trace-otlp-http';
import type * as Resources from '@opentelemetry/resources';
import type * as SdkTraceBase from '@opentelemetry/sdk-trace-base';
import type * as SdkTraceNode from '@opentelemetry/sdk-trace-node';
import { GatewayError } from '../core/errors';

/**
 * OpenTelemetry traces of tool calls, configured by the standard OTEL_* variables and off unless an
 * OTLP endpoint is set. Off, nothing is loaded or registered: every function here returns at its
 * first check, and no span, context or id is made. On, one span per tool call (`tools/call <tool>`
 * at the MCP door, `execute_tool <tool>` at the REST door) with a child span per stage of the
 * pipeline, parented by an incoming W3C `traceparent`, exported over OTLP/HTTP.
 *
 * Attributes name the call (tool, agent, door, decision, reason code, HTTP status, audit id), never
 * its arguments, its result, a header or an error's message.
 */

/** What is live while tracing is on. */
interface Live {
  api: typeof Api;
  context: ContextAPI;
  tracer: Tracer;
  /** Only the W3C trace context travels (no baggage): in from an agent, out to an upstream. */
  propagator: TextMapPropagator;
  /** The key under which a call's context holds the call's span (its stages' contexts inherit it). */
  callSpan: symbol;
  provider: { forceFlush(): Promise<void>; shutdown(): Promise<void> };
}

let live: Live | undefined;

/** Trace and span ids of a call, as audit records and log lines carry them. */
export interface TraceIds {
  trace_id: string;
  span_id: string;
}

/** The incoming trace context of a call: the W3C header values (HTTP headers, or MCP `_meta`). */
export interface TraceCarrier {
  traceparent?: unknown;
  tracestate?: unknown;
}

/**
 * Whether the OTEL_* variables turn tracing on: an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT
 * or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), OTEL_SDK_DISABLED is not true and OTEL_TRACES_EXPORTER is
 * not `none`.
 */
export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',').map((name) => name.trim().toLowerCase());
  if (!exporters.includes('otlp')) return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

export function tracingOn(): boolean {
  return live !== undefined;
}

/**
 * Once, before the application is created: registers a tracer provider exporting over OTLP/HTTP
 * when the environment asks for it (tracingWanted). The exporter reads the other OTEL_* variables
 * itself (headers, timeout); OTEL_SERVICE_NAME names the service (default agent-gateway),
 * OTEL_TRACES_SAMPLER picks the sampler (default: follow the parent, else record every call).
 * Returns whether tracing is on.
 */
export function startTracing(env: NodeJS.ProcessEnv = process.env): boolean {
  if (live || !tracingWanted(env)) return live !== undefined;
  // Loaded only now: an instance without tracing does not pay their start-up time.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const api = require('@opentelemetry/api') as typeof Api;
  const { W3CTraceContextPropagator } = require('@opentelemetry/core') as typeof Core;
  const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node') as typeof SdkTraceNode;
  const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base') as typeof SdkTraceBase;
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof OtlpHttp;
  const resources = require('@opentelemetry/resources') as typeof Resources;
  /* eslint-enable @typescript-eslint/no-require-imports */
  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': 'agent-gateway' }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const propagator = new W3CTraceContextPropagator();
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  // The context manager (AsyncLocalStorage) carries the active span across awaits, to the upstream call.
  provider.register({ propagator });
  live = {
    api,
    context: api.context,
    tracer: api.trace.getTracer('agent-gateway'),
    propagator,
    callSpan: api.createContextKey('agent-gateway tool call span'),
    provider,
  };
  return true;
}

/** Sends the spans still buffered (tests, and before a stop). */
export async function flushTracing(): Promise<void> {
  await live?.provider.forceFlush();
}

/** At shutdown: flushes what is buffered and stops exporting. */
export async function stopTracing(): Promise<void> {
  const stopping = live;
  live = undefined;
  if (!stopping) return;
  await stopping.provider.shutdown().catch(() => undefined);
  stopping.api.trace.disable();
  stopping.api.context.disable();
  stopping.api.propagation.disable();
}

/** What a door knows of a tool call when it hands it on. */
export interface CallTrace {
  /** The door: `rest` or `mcp`; `approval`: an approver's decision runs the stored call (POST /approve). */
  channel: 'rest' | 'mcp' | 'approval';
  tool: string;
  agentId?: string;
  /** performance.now() when the request arrived: the call's span starts there, and its `authenticate` child ends when the door hands the call on. */
  arrivedAt: number;
  /** The incoming `traceparent` / `tracestate`: the parent of the call's span. */
  parent?: TraceCarrier;
  /** Whose request line gets the call's ids too (the door's request context). */
  owner?: object;
}

const idsOfOwner = new WeakMap<object, TraceIds>();

/**
 * Runs `fn` (the door's handling of one tool call) inside the call's span; off, just runs it. The
 * span ends when `fn` settles.
 */
export function traceToolCall<T>(call: CallTrace, fn: () => Promise<T>): Promise<T> {
  if (!live) return fn();
  const { api, tracer, propagator } = live;
  const parent = call.parent ? propagator.extract(api.ROOT_CONTEXT, carrierOf(call.parent), api.defaultTextMapGetter) : api.ROOT_CONTEXT;
  const arrived = performance.timeOrigin + call.arrivedAt;
  const mcp = call.channel === 'mcp';
  const span = tracer.startSpan(
    `${mcp ? 'tools/call' : 'execute_tool'} ${call.tool}`,
    {
      kind: api.SpanKind.SERVER,
      startTime: arrived,
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': call.tool,
        ...(mcp && { 'mcp.method.name': 'tools/call' }),
        ...(call.agentId !== undefined && { 'gen_ai.agent.id': call.agentId }),
        'agent_gateway.channel': call.channel,
      },
    },
    parent,
  );
  const callContext = api.trace.setSpan(parent, span).setValue(live.callSpan, span);
  // What happened before the door handed the call on: reading the body, the signature or token, the envelope.
  if (call.channel !== 'approval') tracer.startSpan('authenticate', { startTime: arrived }, callContext).end();
  if (call.owner) idsOfOwner.set(call.owner, idsOf(span));
  return live.context.with(callContext, fn).finally(() => span.end());
}

/** What the exception filter knows of a refused request (an Express request and its RequestContext, as far as a span needs them). */
export interface RefusedRequest {
  method: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The matched route (Express sets it); absent when none matched. */
  route?: { path?: unknown };
}
export interface RefusedContext {
  auditId: string;
  /** performance.now() when the request arrived: the span starts there. */
  startedAt: number;
  /** Whether the refusal is recorded in the audit log (then under auditId). */
  audited?: boolean;
  /** The agent, once its credentials checked out (a refusal after authentication). */
  agent?: { id: string };
}

/**
 * A request refused before any tool call began (authentication, the address's failure budget, the
 * envelope, a limit): a span of its own named by the route (`POST /api/tools/call`, `POST /mcp`),
 * parented by the request's `traceparent`, with the HTTP status, status word and reason code of the
 * refusal, the audit id when it is recorded, and the agent only once authenticated: no header, token
 * or claimed identity. `record` (the refusal's audit record) runs inside it, so the record and the
 * request's log line carry its ids; it returns the error answered. A request whose tool call has a
 * span already (the call failed later) gets no second one.
 */
export async function traceRefusal(req: RefusedRequest, ctx: RefusedContext, record: () => Promise<GatewayError>): Promise<GatewayError> {
  if (!live || idsOfOwner.has(ctx)) return record();
  const { api, tracer, propagator } = live;
  const { traceparent, tracestate } = req.headers;
  const parent = propagator.extract(api.ROOT_CONTEXT, carrierOf({ traceparent, tracestate }), api.defaultTextMapGetter);
  const route = typeof req.route?.path === 'string' ? req.route.path : undefined;
  const span = tracer.startSpan(
    route ? `${req.method} ${route}` : req.method,
    {
      kind: api.SpanKind.SERVER,
      startTime: performance.timeOrigin + ctx.startedAt,
      attributes: {
        'http.request.method': req.method,
        ...(route && { 'http.route': route }),
        ...(ctx.agent && { 'gen_ai.agent.id': ctx.agent.id }),
      },
    },
    parent,
  );
  idsOfOwner.set(ctx, idsOf(span));
  try {
    const error = await live.context.with(api.trace.setSpan(parent, span).setValue(live.callSpan, span), record);
    span.setAttributes({
      'http.response.status_code': error.httpStatus,
      'agent_gateway.status': error.status,
      'agent_gateway.reason_code': error.reasonCode,
      ...(ctx.audited && { 'agent_gateway.audit_id': ctx.auditId }),
    });
    if (error.httpStatus >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR }).setAttribute('error.type', error.reasonCode);
    return error;
  } finally {
    span.end();
  }
}

/**
 * One stage of the call as a child span of the active one; off, just runs it. A GatewayError it
 * throws names its reason code (an error status at 5xx); anything else is an error, unless `expected`
 * says it is how the stage answers (a stored replay).
 */
export function traceStage<T>(name: string, fn: () => Promise<T>, expected?: (err: unknown) => boolean): Promise<T> {
  // Only inside a call: a refusal a door records before any call began makes no span of its own.
  if (!live || activeCallSpan(live) === undefined) return fn();
  const { api } = live;
  return live.tracer.startActiveSpan(name, (span) => {
    const failed = (err: unknown): never => {
      if (!expected?.(err)) markFailure(api, span, err);
      span.end();
      throw err;
    };
    let running: Promise<T>;
    try {
      running = fn();
    } catch (err) {
      return failed(err);
    }
    return running.then((value) => {
      span.end();
      return value;
    }, failed);
  });
}

/** What the gateway decided, on the active call's span. */
export function annotateCall(attributes: Attributes): void {
  if (!live) return;
  activeCallSpan(live)?.setAttributes(attributes);
}

/** The call's answer on its span: its audit id, the HTTP status, the status word and the reason code of a refusal. */
export function annotateAnswer(auditId: string, httpStatus: number, status: string | undefined, reasonCode: string | undefined): void {
  if (!live) return;
  const span = activeCallSpan(live);
  if (!span) return;
  span.setAttributes({
    'agent_gateway.audit_id': auditId,
    'http.response.status_code': httpStatus,
    ...(status !== undefined && { 'agent_gateway.status': status }),
    ...(reasonCode !== undefined && { 'agent_gateway.reason_code': reasonCode }),
  });
  if (httpStatus >= 500) span.setStatus({ code: live.api.SpanStatusCode.ERROR }).setAttribute('error.type', reasonCode ?? String(httpStatus));
}

/** The active call's trace and span ids (for its audit records and log lines); undefined when off or outside a call. */
export function callTraceIds(): TraceIds | undefined {
  if (!live) return undefined;
  const span = activeCallSpan(live);
  return span && idsOf(span);
}

/** The ids of the call a request carried (its request line is written after the call's context ended). */
export function traceIdsOf(owner: object): TraceIds | undefined {
  return live ? idsOfOwner.get(owner) : undefined;
}

/** Adds `traceparent` (and `tracestate`) of the active span to an upstream request's headers; off, nothing. */
export function injectTraceHeaders(headers: Record<string, string>): void {
  if (!live) return;
  live.propagator.inject(live.context.active(), headers, live.api.defaultTextMapSetter);
}

/** `_meta.traceparent` / `tracestate` for an upstream MCP request; undefined when off. */
export function traceMeta(): Record<string, string> | undefined {
  if (!live) return undefined;
  const meta: Record<string, string> = {};
  live.propagator.inject(live.context.active(), meta, live.api.defaultTextMapSetter);
  return meta;
}

function activeCallSpan(on: Live): Span | undefined {
  return on.context.active().getValue(on.callSpan) as Span | undefined;
}

function idsOf(span: Span): TraceIds {
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

function carrierOf(parent: TraceCarrier): Record<string, string> {
  const carrier: Record<string, string> = {};
  if (typeof parent.traceparent === 'string') carrier.traceparent = parent.traceparent;
  if (typeof parent.tracestate === 'string') carrier.tracestate = parent.tracestate;
  return carrier;
}

function markFailure(api: typeof Api, span: Span, err: unknown): void {
  if (err instanceof GatewayError) {
    span.setAttribute('agent_gateway.reason_code', err.reasonCode);
    if (err.httpStatus >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR }).setAttribute('error.type', err.reasonCode);
    return;
  }
  // The error's type only: its message may quote an upstream or a value.
  span.setStatus({ code: api.SpanStatusCode.ERROR }).setAttribute('error.type', err instanceof Error ? err.name : 'unknown');
}
