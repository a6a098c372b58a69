import { allKeys } from '../core/json-walk';
import { normalizeFieldName } from '../config/gateway-config';

/**
 * The argument keys at any depth as the gateway compares them (normalizeFieldName: Unicode
 * folding, lookalikes, case, non-alphanumerics), sorted and each once: what the OPA policy checks
 * forbidden fields against (`input.argument_keys`), since Rego cannot fold Unicode lookalikes.
 */
export function normalizedArgumentKeys(args: unknown): string[] {
  return [...new Set([...allKeys(args)].map(normalizeFieldName))].sort();
}
