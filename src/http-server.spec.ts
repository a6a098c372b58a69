import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { configureHttpServer, httpServerLimits } from './http-server';

describe('httpServerLimits', () => {
  it('has defaults that close stalled clients within seconds', () => {
    expect(httpServerLimits({})).toEqual({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, maxConnections: 1024 });
  });

  it('reads each limit from its environment variable', () => {
    expect(
      httpServerLimits({
        GATEWAY_HEADERS_TIMEOUT_MS: '2000',
        GATEWAY_REQUEST_TIMEOUT_MS: '120000',
        GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '65000',
        GATEWAY_MAX_CONNECTIONS: '50',
      }),
    ).toEqual({ headersTimeoutMs: 2000, requestTimeoutMs: 120_000, keepAliveTimeoutMs: 65_000, maxConnections: 50 });
  });

  it.each([
    [{ GATEWAY_MAX_CONNECTIONS: '0' }, 'GATEWAY_MAX_CONNECTIONS must be an integer from 1 to 1000000'],
    [{ GATEWAY_REQUEST_TIMEOUT_MS: '30s' }, 'GATEWAY_REQUEST_TIMEOUT_MS must be an integer from 1 to 3600000'],
    [{ GATEWAY_HEADERS_TIMEOUT_MS: '-1' }, 'GATEWAY_HEADERS_TIMEOUT_MS must be an integer from 1 to 600000'],
    [{ GATEWAY_HEADERS_TIMEOUT_MS: '40000' }, 'GATEWAY_HEADERS_TIMEOUT_MS must not exceed GATEWAY_REQUEST_TIMEOUT_MS'],
  ])('refuses %j at start', (env, message) => {
    expect(() => httpServerLimits(env)).toThrow(message);
  });
});

describe('configureHttpServer', () => {
  it('warns once when the connection cap refuses connections, not once per connection', async () => {
    const warnings: string[] = [];
    const server = createServer((_req, res) => res.end());
    configureHttpServer(server, { ...httpServerLimits({}), maxConnections: 1 }, (message) => warnings.push(message));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const sockets = [0, 1, 2].map(() => connect(port, '127.0.0.1').on('error', () => undefined));
    try {
      // Two of the three are refused, whichever the server accepted first.
      await new Promise<void>((resolve) => {
        let closed = 0;
        sockets.forEach((socket) => socket.once('close', () => ++closed === 2 && resolve()));
      });
      expect(warnings).toEqual(['Connection cap reached (GATEWAY_MAX_CONNECTIONS=1): refused 1 connection(s) since the last warning']);
    } finally {
      sockets.forEach((socket) => socket.destroy());
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
