import { createHash, generateKeyPairSync } from 'node:crypto';
import { signPayload, signRequestHeaders, stringToSign, verifySignature } from './signature';

describe('request signatures', () => {
  const body = '{"agent_id":"a"}';
  const hmacKey = { alg: 'hmac-sha256' as const, secret: Buffer.from('k'.repeat(32)) };
  const ed = generateKeyPairSync('ed25519');

  it('signs the documented string', () => {
    const bodyHash = createHash('sha256').update(body).digest('hex');
    expect(stringToSign('1700000000', 'post', '/api/tools/call?x=1', body)).toBe(`v1\n1700000000\nPOST\n/api/tools/call?x=1\n${bodyHash}`);
    expect(stringToSign('1', 'GET', '/api/tools', '')).toBe('v1\n1\nGET\n/api/tools\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('accepts an HMAC-SHA256 signature made with the agent secret', () => {
    const payload = stringToSign('1', 'POST', '/p', body);
    const sig = Buffer.from(signPayload({ alg: 'hmac-sha256', secret: 'k'.repeat(32) }, payload), 'base64');
    expect(verifySignature(hmacKey, payload, sig)).toBe(true);
  });

  it('refuses an HMAC signature over another payload, by another key, or of another length', () => {
    const payload = stringToSign('1', 'POST', '/p', body);
    const sig = Buffer.from(signPayload({ alg: 'hmac-sha256', secret: 'k'.repeat(32) }, payload), 'base64');
    expect(verifySignature(hmacKey, stringToSign('2', 'POST', '/p', body), sig)).toBe(false);
    expect(verifySignature({ alg: 'hmac-sha256', secret: Buffer.from('other') }, payload, sig)).toBe(false);
    expect(verifySignature(hmacKey, payload, sig.subarray(0, 31))).toBe(false);
    expect(verifySignature(hmacKey, payload, Buffer.alloc(0))).toBe(false);
  });

  it('accepts an Ed25519 signature by the private key and refuses one by another key', () => {
    const payload = stringToSign('1', 'POST', '/p', body);
    const good = Buffer.from(signPayload({ alg: 'ed25519', privateKey: ed.privateKey }, payload), 'base64');
    const other = generateKeyPairSync('ed25519');
    const bad = Buffer.from(signPayload({ alg: 'ed25519', privateKey: other.privateKey }, payload), 'base64');
    expect(verifySignature({ alg: 'ed25519', publicKey: ed.publicKey }, payload, good)).toBe(true);
    expect(verifySignature({ alg: 'ed25519', publicKey: ed.publicKey }, payload, bad)).toBe(false);
    expect(verifySignature({ alg: 'ed25519', publicKey: ed.publicKey }, payload.replace('POST', 'GET'), good)).toBe(false);
  });

  it('builds the three headers', () => {
    const headers = signRequestHeaders('agent_1', { alg: 'hmac-sha256', secret: 'k'.repeat(32) }, 'GET', '/api/tools', '', 1700000000);
    expect(headers).toEqual({ 'X-Agent-Id': 'agent_1', 'X-Agent-Timestamp': '1700000000', 'X-Agent-Signature': expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/) });
  });
});
