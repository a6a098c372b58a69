import { isInternalAddress } from './egress';

describe('isInternalAddress (what http tools and MCP servers may not reach by name)', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['169.254.169.254', 'link-local (cloud metadata)'],
    ['::1', 'IPv6 loopback'],
    ['::', 'unspecified'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback, in hex (as a URL writes it)'],
    ['::ffff:a9fe:a9fe', 'IPv4-mapped link-local'],
    ['::127.0.0.1', 'IPv4-compatible'],
    ['::a9fe:a9fe', 'IPv4-compatible, in hex'],
    ['64:ff9b::a00:1', 'NAT64 (well-known prefix)'],
    ['64:ff9b:1::a00:1', 'NAT64 (local-use prefix)'],
    ['2002:7f00:1::1', '6to4'],
    ['100::1', 'discard-only'],
    ['fec0::1', 'site-local'],
    ['fd12:3456::1', 'unique local'],
    ['fe80::1', 'link-local'],
    ['2001:db8::1', 'documentation'],
    ['not-an-address', 'not an address'],
  ])('refuses %s (%s)', (address) => {
    expect(isInternalAddress(address)).toBe(true);
  });

  it.each([['8.8.8.8'], ['::ffff:8.8.8.8'], ['::ffff:808:808'], ['2606:4700:4700::1111'], ['2a00:1450:4001::1']])(
    'lets the public address %s through',
    (address) => {
      expect(isInternalAddress(address)).toBe(false);
    },
  );
});
