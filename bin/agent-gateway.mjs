#!/usr/bin/env node
// `npx agent-gateway <command> …`: the gateway's command-line tools without npm's banner on stdout, so
// their output pipes (`npx agent-gateway call … | jq`). Brings dist/ up to date first (only what
// changed is compiled, as `npm start` does), then runs the built tool in this process.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Command → its file in dist/cli, with what it does (the README describes each). */
const COMMANDS = {
  call: ['call.js', 'sign and send a request as an agent; prints the JSON answer'],
  token: ['token.js', "mint a bearer token for an agent's MCP door"],
  'audit-verify': ['audit-verify.js', "check the audit log's hash chain"],
  'policy-data': ['policy-data.js', 'write policies/data.json (gateway.yaml as data) for OPA'],
  'mcp-pin': ['mcp-pin.js', "pin the upstream MCP servers' tools in mcp-lock.json"],
};

const [command, ...rest] = process.argv.slice(2);
if (!command || !Object.hasOwn(COMMANDS, command)) {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const list = Object.entries(COMMANDS).map(([name, [, what]]) => `  ${name.padEnd(width)}  ${what}`);
  process.stderr.write(`${command ? `agent-gateway: unknown command "${command}"\n` : ''}usage: npx agent-gateway <command> [options]\n${list.join('\n')}\n`);
  process.exit(command === '--help' || command === '-h' ? 0 : 2);
}

// The build writes only to stderr (what it compiled, or why it failed), never to stdout.
const build = spawnSync(process.execPath, [join(root, '.build', 'build.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
if (build.status !== 0) process.exit(build.status ?? 1);

// The tool reads its options from process.argv as if it were run directly: node <file> [options].
process.argv = [process.argv[0], join(root, 'dist', 'cli', COMMANDS[command][0]), ...rest];
createRequire(import.meta.url)(process.argv[1]);
