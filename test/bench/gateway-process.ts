// How every bench starts the built gateway (dist/main.js, or a copy of dist for an A/B) and waits
// for it: one place for the process's environment and its readiness.
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export interface GatewayProcessOptions {
  port: number;
  configFile: string;
  dataDir: string;
  workspace: string;
  /** The build to run (default dist). */
  dist?: string;
  /** Node flags before the script, such as --cpu-prof. */
  nodeArgs?: string[];
  logLevel?: string;
  /** More environment (stores, GATEWAY_CONFIG_WATCH…). */
  env?: NodeJS.ProcessEnv;
}

export function spawnGateway(options: GatewayProcessOptions): ChildProcess {
  return spawn(process.execPath, [...(options.nodeArgs ?? []), join(options.dist ?? 'dist', 'main.js')], {
    env: {
      ...process.env,
      PORT: String(options.port),
      HOST: '127.0.0.1',
      GATEWAY_CONFIG: options.configFile,
      GATEWAY_DATA_DIR: options.dataDir,
      GATEWAY_WORKSPACE: options.workspace,
      LOG_LEVEL: options.logLevel ?? 'info',
      ...options.env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Until `url` answers below 500 (or exactly `status`, when given); fails when `child` exits first
 * or after a minute.
 */
export async function waitFor(url: string, options: { child?: ChildProcess; status?: number; init?: RequestInit } = {}): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (options.child && options.child.exitCode !== null) throw new Error(`the process exited with ${options.child.exitCode} before ${url} answered`);
    try {
      const res = await fetch(url, options.init);
      await res.arrayBuffer();
      if (options.status === undefined ? res.status < 500 : res.status === options.status) return;
    } catch {
      // not listening yet
    }
    await sleep(10);
  }
  throw new Error(`${url} never answered`);
}

/** Stops a child (SIGTERM) and waits for it to exit. */
export function stopProcess(child: ChildProcess): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  return exited;
}
