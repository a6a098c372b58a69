import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestGateway } from './support/test-gateway';

describe('GET /metrics', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await new TestGateway({ toolLimit: { limit: 1, ttl_s: 60 } }).start();
    writeFileSync(join(gw.workspace, 'hello.txt'), 'hi');
  });
  afterAll(() => gw.stop());

  it('counts calls by tool, decision and status, times decisions and executions, and never labels with arguments', async () => {
    await gw.call('read_file', { path: 'hello.txt' });
    await gw.call('read_file', { path: 'secret-project-name.txt' });
    await gw.call('read_file', { path: 'x', password: 'p' });
    await gw.call('write_file', { path: 'w.txt', content: 'x' });
    await gw.call('no_such_tool_abc', {});
    await gw.call('limited_read', { path: 'hello.txt' });
    await gw.call('limited_read', { path: 'hello.txt' });

    const res = await gw.http().get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text: string = res.text;
    const sample = (line: string) => expect(text.split('\n')).toContain(line);
    sample('gateway_tool_calls_total{channel="rest",tool="read_file",decision="allow",status="executed"} 1');
    sample('gateway_tool_calls_total{channel="rest",tool="read_file",decision="allow",status="tool_error"} 1');
    sample('gateway_tool_calls_total{channel="rest",tool="read_file",decision="deny",status="denied"} 1');
    sample('gateway_tool_calls_total{channel="rest",tool="write_file",decision="pending",status="pending_approval"} 1');
    sample('gateway_tool_calls_total{channel="rest",tool="unregistered",decision="deny",status="denied"} 1');
    sample('gateway_pending_approvals 1');
    sample('gateway_rate_limited_total{limit="tool"} 1');
    sample('gateway_audit_write_failures_total 0');
    expect(text).toMatch(/^gateway_policy_decision_seconds_count\{engine="builtin"\} \d+$/m);
    expect(text).toMatch(/^gateway_tool_execution_seconds_count\{tool="read_file"\} 2$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    for (const leaked of ['hello.txt', 'secret-project-name', 'no_such_tool_abc', 'agent_deploy_test', 'password']) expect(text).not.toContain(leaked);
  });
});
