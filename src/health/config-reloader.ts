import { type Stats, unwatchFile, watchFile } from 'node:fs';
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { AuditLog } from '../audit/audit-log.service';
import { ConfigError, loadGatewayConfig } from '../config/config.loader';
import { type ConfigChanges, ConfigSwaps, describeChanges, keepRestartBound } from '../config/config-reload';
import { GatewayConfig } from '../config/gateway-config';
import { newAuditId } from '../core/ids';
import { KIND_CONFIGS } from '../kinds';
import { GatewayMetrics } from '../metrics/gateway-metrics';

type Env = Record<string, string | undefined>;

/** What a reload did: applied (with what changed and what waits for a restart), or refused and why. */
export type ReloadOutcome = { applied: true; changes: ConfigChanges; restartRequired: string[] } | { applied: false; problem: string };

export type ReloadTrigger = 'signal' | 'file';

/**
 * How the watched files are looked at: their stat every `pollMs` (this follows an editor's rename
 * and a Kubernetes ConfigMap's symlink swap, which an inotify watch on the file would lose), and
 * a reload once nothing has changed for `debounceMs` (editors write a file in several steps).
 */
export interface WatchTiming {
  pollMs: number;
  debounceMs: number;
}

const DEFAULT_TIMING: WatchTiming = { pollMs: 500, debounceMs: 1000 };

/**
 * Live configuration (README "Operating it"): SIGHUP, or a change of the config file or of a
 * secret file it names, loads the config again, validated whole by the same loader as at start.
 * A valid one is recorded (audit `config_reload`, naming what changed) and swapped in at once
 * (ConfigSwaps); an invalid one is refused: the running config stays, the error log says why,
 * gateway_config_reload_failures_total counts it and /readyz shows `config_reload_failed` until a
 * reload is applied. Reloads run one at a time.
 */
@Injectable()
export class ConfigReloader implements OnApplicationShutdown {
  private readonly logger = new Logger('ConfigReload');
  private env: Env = process.env;
  private timing = DEFAULT_TIMING;
  /** Watched paths, each with its listener and the secret it holds (none: the config file). */
  private readonly watched = new Map<string, { secret?: string; listener: (curr: Stats, prev: Stats) => void }>();
  private debounce?: NodeJS.Timeout;
  /** Secrets whose file changed since the last reload. */
  private readonly rotated = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  private refusedAt?: string;
  private readonly onSignal = () => {
    clearTimeout(this.debounce);
    void this.reload('signal');
  };

  constructor(
    private readonly live: GatewayConfig,
    private readonly swaps: ConfigSwaps,
    private readonly audit: AuditLog,
    private readonly metrics: GatewayMetrics,
  ) {}

  /**
   * Called once the app is up (main.ts): SIGHUP reloads from now on, and so does a change of a
   * watched file, unless GATEWAY_CONFIG_WATCH=off. `env`: what the config was loaded with.
   */
  start(env: Env, timing: WatchTiming = DEFAULT_TIMING): void {
    this.env = env;
    this.timing = timing;
    process.on('SIGHUP', this.onSignal);
    if (env.GATEWAY_CONFIG_WATCH !== 'off') this.watchFilesOf(this.live);
  }

  /** When the last reload was refused, while no later one was applied (a /readyz detail). */
  get lastRefusal(): string | undefined {
    return this.refusedAt;
  }

  /** Loads the config file again and swaps it in, or keeps the running one. */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const run = this.queue.then(() => this.reloadNow(trigger));
    this.queue = run.catch(() => undefined);
    return run;
  }

  onApplicationShutdown(): void {
    process.off('SIGHUP', this.onSignal);
    clearTimeout(this.debounce);
    for (const [path, { listener }] of this.watched) unwatchFile(path, listener);
    this.watched.clear();
  }

  private async reloadNow(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const rotated = [...this.rotated];
    this.rotated.clear();
    let loaded: GatewayConfig;
    try {
      loaded = loadGatewayConfig(this.env, { kinds: KIND_CONFIGS });
    } catch (err) {
      // A ConfigError names the file, the path in it and the problem, never a value; anything else: its message only.
      return this.refuse(trigger, err instanceof ConfigError ? err.message : `${this.live.source}: ${(err as Error).message}`);
    }
    const { next, restartRequired } = keepRestartBound(this.live, loaded);
    const changes = describeChanges(
      this.live,
      next,
      rotated.filter((name) => Object.prototype.hasOwnProperty.call(next.secrets, name)),
    );
    let swap: () => void;
    try {
      swap = this.swaps.prepare(next);
    } catch (err) {
      return this.refuse(trigger, `${this.live.source}: ${(err as Error).message}`);
    }
    // Recorded before it takes effect: the audit log never lacks a change that was made.
    try {
      await this.audit.append({
        audit_id: newAuditId(),
        event: 'config_reload',
        status: 'applied',
        config: { trigger, changes, ...(restartRequired.length > 0 && { restart_required: restartRequired }) },
      });
    } catch {
      return this.refuse(trigger, 'the audit log cannot be written, so the change is not made');
    }
    swap();
    this.refusedAt = undefined;
    this.metrics.configReloaded(true);
    this.logger.log(`configuration reloaded (${trigger}): ${summary(changes)}`);
    if (restartRequired.length > 0) this.logger.warn(`these keep their running value until a restart: ${restartRequired.join('; ')}`);
    if (this.watched.size > 0) this.watchFilesOf(this.live);
    return { applied: true, changes, restartRequired };
  }

  private async refuse(trigger: ReloadTrigger, problem: string): Promise<ReloadOutcome> {
    this.refusedAt = new Date().toISOString();
    this.metrics.configReloaded(false);
    this.logger.error(`configuration reload refused (${trigger}), the running configuration is kept: ${problem}`);
    try {
      await this.audit.append({
        audit_id: newAuditId(),
        event: 'config_reload',
        status: 'refused',
        reason_code: 'config_reload_failed',
        config: { trigger, changes: {} },
      });
    } catch {
      this.logger.error('the config_reload record of the refused reload could not be written to the audit log');
    }
    return { applied: false, problem };
  }

  /** Watches the config file and every secret file it names (and no longer the ones it dropped). */
  private watchFilesOf(config: GatewayConfig): void {
    const wanted = new Map<string, string | undefined>([[config.source, undefined]]);
    for (const [name, source] of Object.entries(config.secrets)) if (source.from === 'file' && !wanted.has(source.path)) wanted.set(source.path, name);
    for (const [path, { secret, listener }] of this.watched) {
      if (wanted.has(path) && wanted.get(path) === secret) continue;
      unwatchFile(path, listener);
      this.watched.delete(path);
    }
    for (const [path, secret] of wanted) {
      if (this.watched.has(path)) continue;
      const listener = (curr: Stats, prev: Stats) => {
        if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size) return;
        if (secret !== undefined) this.rotated.add(secret);
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.reload('file'), this.timing.debounceMs).unref();
      };
      watchFile(path, { persistent: false, interval: this.timing.pollMs }, listener);
      this.watched.set(path, { secret, listener });
    }
  }
}

/** `agents added: a, b; tools removed: c`, or `no change`. */
function summary(changes: ConfigChanges): string {
  const parts = Object.entries(changes).flatMap(([section, found]) => Object.entries(found).map(([kind, names]) => `${section} ${kind}: ${names.join(', ')}`));
  return parts.join('; ') || 'no change';
}
