import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { TestGateway } from './support/test-gateway';

interface Delivery {
  path: string;
  contentType: string | undefined;
  body: Record<string, unknown>;
}

/** A webhook receiver on 127.0.0.1 that answers each POST with the next status of `statuses` (then 200), or never. */
class Receiver {
  readonly deliveries: Delivery[] = [];
  private readonly server: Server;
  port = 0;

  constructor(private readonly statuses: Array<number | 'hang'> = []) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** Resolves once `count` deliveries have arrived (or fails the test after `ms`). */
  async waitFor(count: number, ms = 8000): Promise<Delivery[]> {
    const until = Date.now() + ms;
    while (this.deliveries.length < count) {
      if (Date.now() > until) throw new Error(`expected ${count} deliveries, got ${this.deliveries.length}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.deliveries;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      this.deliveries.push({ path: req.url!, contentType: req.headers['content-type'], body: JSON.parse(body) });
      const status = this.statuses.shift() ?? 200;
      if (status !== 'hang') res.writeHead(status).end();
    });
  }
}

// The path of a Slack incoming webhook is its credential: it must never reach a log line.
const HOOK_PATH = '/services/T000/B000/hook-credential-abc123';

describe('settings.approval_webhook: approvers hear of a pending call', () => {
  let gw: TestGateway | undefined;
  let receiver: Receiver | undefined;

  afterEach(async () => {
    await gw?.stop();
    await receiver?.stop();
    gw = receiver = undefined;
  });

  async function start(statuses: Array<number | 'hang'> = [], consoleUrl?: string): Promise<TestGateway> {
    receiver = await new Receiver(statuses).start();
    gw = await new TestGateway({
      captureLogs: true,
      approvalWebhook: { url: `http://127.0.0.1:${receiver.port}${HOOK_PATH}`, allowedHosts: ['127.0.0.1'], consoleUrl },
    }).start();
    return gw;
  }

  it('POSTs a Slack-compatible message with the approval and a console link when a call starts to wait', async () => {
    await start([], 'https://gateway.example.com/console');
    const res = await gw!.call('delete_file', { path: 'old.log' });
    expect(res.status).toBe(202);
    const id = res.body.approval_id;

    const [delivery] = await receiver!.waitFor(1);
    const approval = (await gw!.asApprover().get(`/api/approvals/${id}`)).body;
    expect(delivery.path).toBe(HOOK_PATH);
    expect(delivery.contentType).toBe('application/json');
    expect(delivery.body).toEqual({
      text: expect.stringContaining(`agent agent_deploy_test (deployer) wants to run delete_file`),
      approval_id: id,
      agent_id: 'agent_deploy_test',
      tool: 'delete_file',
      expires_at: approval.expires_at,
      console_url: `https://gateway.example.com/console#approval=${id}`,
    });
    expect(delivery.body.text).toContain(`https://gateway.example.com/console#approval=${id}`);
    // No arguments in a chat channel.
    expect(JSON.stringify(delivery.body)).not.toContain('old.log');
  });

  it('announces nothing for calls that run at once', async () => {
    await start();
    expect((await gw!.call('read_file', { path: 'missing.txt' })).status).toBe(502);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(receiver!.deliveries).toEqual([]);
  });

  it('retries after a failure, logs it by host only, and delivers', async () => {
    await start([500]);
    const res = await gw!.call('write_file', { path: 'a.txt', content: 'a' });
    expect(res.status).toBe(202);
    const deliveries = await receiver!.waitFor(2);
    expect(deliveries[1].body).toEqual(deliveries[0].body);
    const logs = gw!.logLines.join('\n');
    expect(logs).toContain(`announcing ${res.body.approval_id} to 127.0.0.1 failed (HTTP 500); retrying in 1 s`);
    expect(logs).not.toContain('hook-credential-abc123');
  });

  it('answers the agent at once while the receiver hangs, and shuts down without waiting for it', async () => {
    await start(['hang']);
    const started = Date.now();
    const res = await gw!.call('write_file', { path: 'b.txt', content: 'b' });
    expect(res.status).toBe(202);
    await receiver!.waitFor(1);
    // The receiver holds the POST (the attempt would time out after 5 s): the agent was not held with it.
    expect(Date.now() - started).toBeLessThan(2000);
    const stopping = Date.now();
    await gw!.stop();
    gw = undefined;
    expect(Date.now() - stopping).toBeLessThan(2000);
  });

  it('answers the agent at once when nothing listens at the webhook', async () => {
    await start();
    await receiver!.stop();
    const started = Date.now();
    const res = await gw!.call('write_file', { path: 'c.txt', content: 'c' });
    expect(res.status).toBe(202);
    expect(Date.now() - started).toBeLessThan(1000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(gw!.logLines.join('\n')).toContain('to 127.0.0.1 failed (ECONNREFUSED); retrying in 1 s');
    receiver = undefined;
  });

  it('refuses at start a webhook whose host is not in allowed_hosts, without echoing its URL', async () => {
    const refused = new TestGateway({ approvalWebhook: { url: `https://hooks.example.com${HOOK_PATH}`, allowedHosts: ['hooks.slack.com'] } });
    try {
      const error = await refused.start().then(
        () => undefined,
        (err: Error) => err,
      );
      expect(error?.message).toMatch(/: settings\.approval_webhook\.url: host "hooks\.example\.com" is not in allowed_hosts$/);
      expect(error?.message).not.toContain('hook-credential');
    } finally {
      await refused.stop();
    }
  });
});
