import { createServer, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

/** A real HTTP upstream on 127.0.0.1 that holds every request until `release()`: a tool call that runs as long as a test wants. */
export class HeldUpstream {
  private readonly server: Server = createServer((req, res) => {
    req.resume();
    this.held.push(res);
  });
  private readonly held: ServerResponse[] = [];

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  /** gateway.yaml lines for an http tool `name` that calls this upstream. */
  tool(name: string, timeoutMs = 10_000): string {
    const { port } = this.server.address() as AddressInfo;
    return `  ${name}: { kind: http, roles: [deployer], timeout_ms: ${timeoutMs}, request: { method: GET, url: "http://127.0.0.1:${port}/held" }, allowed_hosts: [127.0.0.1], input_schema: { type: object } }`;
  }

  /** Answers every held request with 200 {"released":true}. */
  release(): void {
    for (const res of this.held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end('{"released":true}');
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
