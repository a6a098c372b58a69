import { createHmac, KeyObject, sign, timingSafeEqual, verify } from 'node:crypto';
import type { AgentKey } from '../config/gateway-config';
import { sha256Hex } from '../core/hashing';

/** What an agent signs: v1\n{timestamp}\n{METHOD}\n{path with query}\n{hex sha256 of the raw body}. */
export function stringToSign(timestamp: string, method: string, pathWithQuery: string, body: Buffer | string): string {
  return stringToSignWithBodyHash(timestamp, method, pathWithQuery, sha256Hex(body));
}

/** The same, for a body whose hex SHA-256 is known already. */
export function stringToSignWithBodyHash(timestamp: string, method: string, pathWithQuery: string, bodySha256: string): string {
  return `v1\n${timestamp}\n${method.toUpperCase()}\n${pathWithQuery}\n${bodySha256}`;
}

export type SigningKey = { alg: 'hmac-sha256'; secret: string | Buffer } | { alg: 'ed25519'; privateKey: KeyObject };

/** base64 signature of `payload`, as an agent (or the `call` CLI, or a test) makes it. */
export function signPayload(key: SigningKey, payload: string): string {
  if (key.alg === 'hmac-sha256') return createHmac('sha256', key.secret).update(payload).digest('base64');
  return sign(null, Buffer.from(payload), key.privateKey).toString('base64');
}

/** The three X-Agent-* headers for one request. */
export function signRequestHeaders(
  agentId: string,
  key: SigningKey,
  method: string,
  pathWithQuery: string,
  body: Buffer | string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Record<string, string> {
  const timestamp = String(nowSeconds);
  return {
    'X-Agent-Id': agentId,
    'X-Agent-Timestamp': timestamp,
    'X-Agent-Signature': signPayload(key, stringToSign(timestamp, method, pathWithQuery, body)),
  };
}

const SIGNATURE_BYTES = { 'hmac-sha256': 32, ed25519: 64 } as const;

/** Constant-time for HMAC; Ed25519 verification does not depend on secret data. */
export function verifySignature(key: AgentKey, payload: string, signature: Buffer): boolean {
  if (signature.length !== SIGNATURE_BYTES[key.alg]) return false;
  if (key.alg === 'hmac-sha256') {
    const expected = createHmac('sha256', key.secret).update(payload).digest();
    return timingSafeEqual(expected, signature);
  }
  return verify(null, Buffer.from(payload), key.publicKey, signature);
}
