import { InvalidRequest } from './errors';

/** `?limit=`: an integer from 1 to `max`, `fallback` when absent; 400 invalid_query otherwise. */
export function parseLimit(value: string | undefined, max: number, fallback = 100): number {
  if (value === undefined || value === '') return fallback;
  const n = /^[0-9]{1,6}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= max)) throw new InvalidRequest('invalid_query', `limit must be an integer from 1 to ${max}`);
  return n;
}
