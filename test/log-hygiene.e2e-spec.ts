import { definitionSha256, mcpLockPath, writeMcpLock } from '../src/kinds/mcp/mcp-lock';
import { eventually } from './support/eventually';
import { freePort } from './support/free-port';
import { TestGateway } from './support/test-gateway';

jest.setTimeout(30_000);

describe('the application log names no host path, URL or credential', () => {
  it('logs an upstream MCP server that cannot be reached by name and host: not its URL (with a key in the query) nor its command line', async () => {
    const port = await freePort();
    const gw = new TestGateway({
      captureLogs: true,
      mcpServers: [
        `  keyed: { url: "http://127.0.0.1:${port}/private-path/mcp?api_key=query-key-0123456789", allowed_hosts: [127.0.0.1], timeout_ms: 2000 }`,
        '  missing: { command: ["/opt/hidden-install-dir/bin/mcp-server", "--token=cli-token-0123456789"], timeout_ms: 2000 }',
      ].join('\n'),
      extraTools: [
        '  keyed_tool: { kind: mcp, server: keyed, tool: anything, roles: [deployer] }',
        '  missing_tool: { kind: mcp, server: missing, tool: anything, roles: [deployer] }',
      ].join('\n'),
      // Pins written while the servers still answered, so the gateway connects to them at start.
      beforeBoot: (g) => {
        const definition = { name: 'anything', inputSchema: { type: 'object' } };
        const pin = (server: string) => ({ server, tool: 'anything', sha256: definitionSha256(definition), definition });
        writeMcpLock(mcpLockPath(g.configFile), { version: 1, tools: { keyed_tool: pin('keyed'), missing_tool: pin('missing') } });
      },
    });
    try {
      await gw.start();
      const logged = () => gw.logLines.join('\n');
      const reached = (text: string) => /"keyed\\" cannot be reached/.test(text) && /"missing\\" cannot be reached/.test(text);
      expect(reached(await eventually(async () => logged(), reached))).toBe(true);
      expect(logged()).toContain(`MCP server \\"keyed\\" cannot be reached (host 127.0.0.1:${port})`);
      expect(logged()).toMatch(/MCP server \\"missing\\" cannot be reached \(stdio\)[^\n]*ENOENT/);
      for (const hidden of ['query-key-0123456789', 'api_key', 'private-path', 'hidden-install-dir', 'cli-token-0123456789'])
        expect(logged()).not.toContain(hidden);
    } finally {
      await gw.stop();
    }
  });

  it('logs an audit write failure by its code, not its message', async () => {
    // /dev/full accepts the open and fails every write with ENOSPC.
    const gw = await new TestGateway({ auditLog: '/dev/full', captureLogs: true }).start();
    try {
      expect((await gw.call('write_now', { path: 'x.txt', content: 'x' })).status).toBe(503);
      const failure = gw.logLines.map((line) => JSON.parse(line)).find((line) => /audit log write failed/.test(line.msg));
      expect(failure).toMatchObject({ err_code: 'ENOSPC', err_name: 'Error' });
      expect(JSON.stringify(failure)).not.toContain('no space left on device');
    } finally {
      await gw.stop();
    }
  });
});
