// npm run mcp:pin [-- --check]: connects to each upstream MCP server of the config (GATEWAY_CONFIG,
// default policies/gateway.yaml), lists its tools (and the prompts and resources it federates),
// writes mcp-lock.json beside the config (the definition of each declared mcp tool and prompt, the
// metadata of each declared resource it lists, each with its SHA-256), and prints gateway.yaml stubs
// for the upstream tools not declared yet. Exits non-zero, writing nothing, when a server does not
// answer or a declared tool or prompt is not offered. --check only shows what changed (exit 1 if anything did).
import { existsSync } from 'node:fs';
import { ConfigError } from '../config/config.loader';
import { pinMcpTools } from '../kinds/mcp/mcp-pin';

async function main(): Promise<number> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const options = process.argv.slice(2);
  const unknown = options.filter((option) => option !== '--check');
  if (unknown.length > 0) {
    // A mistyped --check must never write the lock: that would accept an upstream change unreviewed.
    process.stderr.write(`mcp:pin: unknown option ${unknown.join(' ')}; usage: npm run mcp:pin [-- --check]\n`);
    return 2;
  }
  const check = options.includes('--check');
  let report;
  try {
    report = await pinMcpTools(process.env, { check });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`config error: ${err.message}\n`);
    return 1;
  }
  process.stdout.write(report.lines.map((line) => `${line}\n`).join(''));
  if (report.stubs.length > 0) {
    process.stdout.write(
      `\n# Upstream tools not declared yet; to offer one, add it under tools: in the config, then run npm run mcp:pin again:\n${report.stubs.join('\n')}\n\n`,
    );
  }
  if (!report.complete) {
    process.stderr.write(`${report.lockFile} NOT written: fix the lines above and run npm run mcp:pin again\n`);
    return 1;
  }
  if (!report.changed) {
    process.stdout.write(`${report.lockFile} is up to date: nothing to write\n`);
    return 0;
  }
  if (check) {
    process.stdout.write(`--check: ${report.lockFile} NOT written. Review the changes above; run npm run mcp:pin (without --check) only to accept them\n`);
    return 1;
  }
  process.stdout.write(
    `wrote ${report.lockFile}; a running gateway takes it up at its next resync (settings.mcp_resync_s): the tools, prompts and resources it re-pins are lifted out of quarantine\n`,
  );
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (err: Error) => {
    process.stderr.write(`mcp:pin failed: ${err.message}\n`);
    process.exitCode = 1;
  },
);
