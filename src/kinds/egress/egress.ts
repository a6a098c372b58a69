import { lookup, LookupAddress, LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import { SECRET_REFERENCE } from '../../config/gateway-config';
import { targetProblem } from '../../config/url-rules';
import type { SecretStore } from '../../secrets/secret-store';

// Loopback, private, link-local, shared, multicast and reserved ranges: not the public internet.
const internal = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  internal.addSubnet(net, prefix, 'ipv4');
// IPv6: IPv4-compatible (::/96, with :: and ::1), discard-only, unique local, link-local,
// site-local, multicast, NAT64 (which reach IPv4 addresses), 6to4 (embeds one), documentation.
// IPv4-mapped addresses (::ffff:0:0/96) are checked against the IPv4 ranges.
for (const [net, prefix] of [
  ['::', 96],
  ['100::', 64],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['2002::', 16],
  ['2001:db8::', 32],
] as const)
  internal.addSubnet(net, prefix, 'ipv6');

/** True for loopback, private, link-local and other non-public addresses, IPv4-mapped IPv6 included. */
export function isInternalAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return internal.check(mapped[1], 'ipv4');
  const family = isIP(address);
  if (family === 0) return true; // not an address: refuse
  return internal.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for the HTTP client's sockets: resolves a host name and refuses it when any address
 * is internal. It runs at connect time, so a name that re-resolves (DNS rebinding) is checked
 * on the connection actually made. IP literals never get here; they are checked by name.
 */
export function publicOnlyLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const refused = addresses.find((a) => isInternalAddress(a.address));
    if (refused) {
      const error: NodeJS.ErrnoException = new Error(`${hostname} resolves to an internal address`);
      error.code = 'EINTERNALADDRESS';
      return callback(error, []);
    }
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0].address, addresses[0].family);
  });
}

/** May a request go to `url`? The rule of src/config/url-rules (http(s), no credentials, a listed host). */
export function isAllowedTarget(url: URL, allowedHosts: readonly string[]): boolean {
  return targetProblem(url, allowedHosts) === undefined;
}

/** `template` with each `${secret:NAME}` replaced by the secret's value now (at the call, never before). */
export async function fillSecrets(template: string, secrets: SecretStore): Promise<string> {
  let value = template;
  for (const [ref, secret] of template.matchAll(SECRET_REFERENCE)) value = value.replace(ref, await secrets.resolve(secret));
  return value;
}

/**
 * The outbound connection pools of http tools and upstream MCP servers: the strict one refuses a
 * name that resolves to an internal address, checked on the connection actually made (so DNS
 * rebinding does not help); the other serves listed IP literals and `allow_private_networks`.
 */
export class EgressPools {
  private readonly publicOnly = new Agent({ connect: { lookup: publicOnlyLookup } });
  private readonly anyAddress = new Agent();

  /** A listed IP literal is the operator's explicit choice; a listed name must resolve to public addresses. */
  for(url: URL, allowPrivateNetworks = false): Dispatcher {
    return allowPrivateNetworks || isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0 ? this.anyAddress : this.publicOnly;
  }

  /** Idempotent: a Nest app closed twice (or a test that restarts it) closes the pools once. */
  async close(): Promise<void> {
    await Promise.all([this.publicOnly, this.anyAddress].filter((pool) => !pool.closed && !pool.destroyed).map((pool) => pool.close()));
  }
}
