import { newAuditId } from './request-context';

describe('newAuditId', () => {
  it('is audit_ and 32 hex digits, unique, and sorts by creation time', async () => {
    const first = newAuditId();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const later = Array.from({ length: 1000 }, newAuditId);
    for (const id of [first, ...later]) expect(id).toMatch(/^audit_[0-9a-f]{32}$/);
    expect(new Set(later).size).toBe(1000);
    expect(later.every((id) => id > first)).toBe(true);
    expect(parseInt(first.slice(6, 18), 16)).toBeGreaterThan(Date.now() - 60_000);
  });
});
