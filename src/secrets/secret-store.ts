import { readFile } from 'node:fs/promises';
import { Injectable, Logger, OnModuleInit, Optional } from '@nestjs/common';
import { ToolFailed } from '../core/errors';
import { ConfigSwaps } from '../config/config-reload';
import { GatewayConfig, SecretSource } from '../config/gateway-config';
import { SecretMatcher } from './secret-matcher';

/** Where a secret's value comes from. A vault-style HTTP provider can implement this too. */
export interface SecretProvider {
  /** The current value, or undefined when there is none. Called at every use, so rotation just works. */
  read(source: SecretSource): Promise<string | undefined>;
}

const envProvider: SecretProvider = {
  async read(source) {
    return source.from === 'env' ? process.env[source.name] || undefined : undefined;
  },
};

/** One file per secret, as Docker and Kubernetes mount them; a trailing newline is not part of it. */
const fileProvider: SecretProvider = {
  async read(source) {
    if (source.from !== 'file') return undefined;
    try {
      return (await readFile(source.path, 'utf8')).replace(/\r?\n$/, '') || undefined;
    } catch {
      return undefined;
    }
  },
};

// Old values are kept for scrubbing after a rotation, up to this many.
const MAX_KNOWN_VALUES = 1000;

/**
 * Secrets by logical name, read at execution time (gateway.yaml `secrets`). It also remembers the agents' HMAC
 * keys (all of them) and every secret value it has read (the newest MAX_KNOWN_VALUES, so rotations
 * cannot grow it without bound), so the Redactor can scrub them, and their encodings, wherever
 * they appear. A value's encodings are computed once, when it becomes known.
 */
@Injectable()
export class SecretStore implements OnModuleInit {
  private readonly logger = new Logger(SecretStore.name);
  private readonly providers: Record<SecretSource['from'], SecretProvider> = { env: envProvider, file: fileProvider };
  private readonly agentKeys: Set<string>;
  /** Secret values read, oldest first; agent keys are not among them (they are never forgotten). */
  private readonly known = new Set<string>();
  private readonly knownMatcher: SecretMatcher;

  constructor(
    private readonly config: GatewayConfig,
    @Optional() swaps?: ConfigSwaps,
  ) {
    this.agentKeys = new Set(hmacKeysOf(config));
    this.knownMatcher = new SecretMatcher(this.agentKeys);
    // After a live reload: the new agents' keys are scrubbed too (the old ones still are), and every secret is read again.
    swaps?.follow((next) => () => {
      for (const key of hmacKeysOf(next).filter((key) => !this.agentKeys.has(key))) {
        if (this.known.delete(key)) this.knownMatcher.delete(key);
        this.agentKeys.add(key);
        this.knownMatcher.add(key);
      }
      void this.onModuleInit();
    });
  }

  /** Reads every declared secret once, so logs are scrubbed of them from the start. */
  async onModuleInit(): Promise<void> {
    const missing: string[] = [];
    for (const name of Object.keys(this.config.secrets)) {
      const value = await this.read(name);
      if (value === undefined) missing.push(name);
    }
    if (missing.length > 0) this.logger.warn(`secrets without a value yet (tools using them fail until they have one): ${missing.join(', ')}`);
  }

  /** The value now, or a tool_error naming the secret (never a value). */
  async resolve(name: string): Promise<string> {
    const value = await this.read(name);
    if (value === undefined) throw new ToolFailed(`Secret "${name}" is not available`);
    return value;
  }

  /** Finds every known secret value in a text. */
  matcher(): SecretMatcher {
    return this.knownMatcher;
  }

  private async read(name: string): Promise<string | undefined> {
    const source = this.config.secrets[name];
    if (!source) return undefined;
    const value = await this.providers[source.from].read(source);
    if (value !== undefined) this.remember(value);
    return value;
  }

  private remember(value: string): void {
    if (this.known.has(value) || this.agentKeys.has(value)) return;
    if (this.known.size >= MAX_KNOWN_VALUES) {
      const oldest = this.known.values().next().value!;
      this.known.delete(oldest);
      this.knownMatcher.delete(oldest);
    }
    this.known.add(value);
    this.knownMatcher.add(value);
  }
}

function hmacKeysOf(config: GatewayConfig): string[] {
  return [...config.agents.values()].flatMap((agent) => (agent.key.alg === 'hmac-sha256' ? [agent.key.secret.toString('utf8')] : []));
}
