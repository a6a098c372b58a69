import { annotateCall, callTraceIds, injectTraceHeaders, traceMeta, traceStage, traceToolCall, tracingOn, tracingWanted } from './tracing';

describe('tracingWanted: the OTEL_* variables', () => {
  const endpoint = 'http://collector:4318';
  it.each([
    ['nothing set', {}, false],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }, true],
    ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/v1/traces` }, true],
    ['an endpoint and OTEL_SDK_DISABLED=true', { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: 'TRUE' }, false],
    ['an endpoint and OTEL_SDK_DISABLED=false', { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: 'false' }, true],
    ['an endpoint and OTEL_TRACES_EXPORTER=none', { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_EXPORTER: 'none' }, false],
    ['an endpoint and OTEL_TRACES_EXPORTER=otlp', { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_EXPORTER: 'otlp' }, true],
    ['OTEL_SERVICE_NAME alone', { OTEL_SERVICE_NAME: 'gw' }, false],
  ])('%s → %s', (_what, env, wanted) => {
    expect(tracingWanted(env)).toBe(wanted);
  });
});

describe('off', () => {
  it('runs every stage as it is and makes no ids, headers or _meta', async () => {
    expect(tracingOn()).toBe(false);
    const result = await traceToolCall(
      { channel: 'rest', tool: 't', arrivedAt: performance.now(), parent: { traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01` } },
      () =>
        traceStage('execute', async () => {
          annotateCall({ 'agent_gateway.decision': 'allow' });
          return callTraceIds();
        }),
    );
    expect(result).toBeUndefined();
    const headers: Record<string, string> = {};
    injectTraceHeaders(headers);
    expect(headers).toEqual({});
    expect(traceMeta()).toBeUndefined();
    await expect(traceStage('limit', () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
  });
});
