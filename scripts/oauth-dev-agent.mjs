// An agent that signs in on its own (README, "Sign in with your identity provider"): the official
// MCP SDK client with client credentials connects to the gateway's /mcp, finds the identity
// provider from the gateway's 401 and its protected resource metadata, gets a token for the
// gateway, lists its tools and reads a file. Started by hand beside `npm run oauth:dev`:
//
//   node scripts/oauth-dev-agent.mjs <client_id> <client_secret> <issuer> [gateway /mcp URL]
//
// The client's secret is sent only to <issuer>: the SDK refuses an authorization server the
// gateway names if it is another one.
import { Client, ClientCredentialsProvider, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const [clientId, clientSecret, expectedIssuer, url = `http://localhost:${process.env.PORT ?? 8000}/mcp`] = process.argv.slice(2);
if (!clientId || !clientSecret || !expectedIssuer) {
  process.stderr.write('usage: node scripts/oauth-dev-agent.mjs <client_id> <client_secret> <issuer> [gateway /mcp URL]\n');
  process.exit(2);
}

const authProvider = new ClientCredentialsProvider({ clientId, clientSecret, scope: 'tools:call', expectedIssuer });
const client = new Client({ name: 'oauth-dev-agent', version: '1.0.0' });
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider }));
  const token = (await authProvider.tokens())?.access_token ?? '';
  process.stdout.write(`connected to ${url} with a token from the identity provider (${token.split('.').length === 3 ? 'a JWT' : 'opaque'})\n`);
  const { tools } = await client.listTools();
  process.stdout.write(`tools/list: ${tools.map((t) => t.name).join(', ')}\n`);
  const result = await client.callTool({ name: 'list_dir', arguments: { path: '.' } });
  process.stdout.write(`tools/call list_dir: ${JSON.stringify(result.structuredContent ?? result.content).slice(0, 400)}\n`);
  process.stdout.write('The audit log records the call with auth "oauth", the issuer and the subject.\n');
} catch (err) {
  process.stderr.write(`${err.message}\n(is the gateway running at ${url} with the oauth: section that npm run oauth:dev printed?)\n`);
  process.exitCode = 1;
} finally {
  await client.close();
}
