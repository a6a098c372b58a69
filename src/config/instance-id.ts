import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { GatewayConfig } from './gateway-config';

const INSTANCE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * This gateway instance's name (GATEWAY_INSTANCE_ID): it names the instance's audit
 * chain and the approvals it claimed. Default: the host name plus a random suffix kept in the data
 * dir, so it is stable across restarts and unique across instances that share a host.
 */
export class InstanceId {
  constructor(readonly value: string) {}

  static of(config: GatewayConfig, env: Record<string, string | undefined> = process.env): InstanceId {
    const given = env.GATEWAY_INSTANCE_ID;
    if (given !== undefined && given !== '') {
      if (!INSTANCE_ID.test(given)) throw new Error(`GATEWAY_INSTANCE_ID must match ${INSTANCE_ID.source}`);
      return new InstanceId(given);
    }
    const file = join(config.paths.dataDir, 'instance-suffix');
    let suffix: string;
    try {
      suffix = readFileSync(file, 'utf8').trim();
    } catch {
      suffix = randomBytes(4).toString('hex');
      mkdirSync(config.paths.dataDir, { recursive: true });
      writeFileSync(file, `${suffix}\n`, { flag: 'wx' });
    }
    const host =
      hostname()
        .replace(/[^A-Za-z0-9._-]/g, '-')
        .slice(0, 48) || 'gateway';
    return new InstanceId(`${host}-${suffix}`);
  }
}
