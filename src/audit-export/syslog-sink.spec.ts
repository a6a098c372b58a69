import { octetCounted, settleMs, syslogMessage } from './syslog-sink';

describe('syslog framing', () => {
  const line = JSON.stringify({
    ts: '2026-12-04T10:00:00.123Z',
    seq: 7,
    instance_id: 'gw-1',
    audit_id: 'audit_x',
    event: 'decision',
    arguments: { path: 'héllo wörld ✓.txt' },
  });

  it('writes the record as the MSG of an RFC 5424 message: facility*8+6, its ts, instance as PROCID, event as MSGID', () => {
    expect(syslogMessage(line, 13, 'agent-gateway')).toMatch(
      new RegExp(`^<110>1 2026-12-04T10:00:00\\.123Z \\S+ agent-gateway gw-1 decision - ${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`),
    );
  });

  it('counts octets, not characters', () => {
    const framed = octetCounted(syslogMessage(line, 13, 'agent-gateway'));
    const [count, ...rest] = framed.split(' ');
    expect(Number(count)).toBe(Buffer.byteLength(rest.join(' ')));
    expect(Number(count)).toBeGreaterThan(rest.join(' ').length);
  });

  it('puts NILVALUE where a record lacks a field or holds one syslog cannot carry', () => {
    const odd = JSON.stringify({ ts: '2026-12-04T10:00:00.123Z', seq: 1, audit_id: 'a', event: 'an event with spaces' });
    expect(syslogMessage(odd, 4, 'gw')).toMatch(/^<38>1 \S+ \S+ gw - - - \{/);
  });

  it('waits four handshakes for a batch to settle, from 20 ms to 1 s', () => {
    expect(settleMs(0.2)).toBe(20);
    expect(settleMs(30)).toBe(120);
    expect(settleMs(900)).toBe(1000);
  });
});
