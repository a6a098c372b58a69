import { newAuditId, newId } from './ids';

describe('ids', () => {
  it('audit ids are the prefix and 32 hex digits, a UUIDv7 whose first 48 bits are the time in milliseconds', () => {
    const before = Date.now();
    const id = newAuditId();
    expect(id).toMatch(/^audit_[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
    expect(parseInt(id.slice(6, 18), 16)).toBeGreaterThanOrEqual(before);
    expect(parseInt(id.slice(6, 18), 16)).toBeLessThanOrEqual(Date.now());
  });

  it('other ids are the prefix and a random UUIDv4 as 32 hex digits', () => {
    expect(newId('approv')).toMatch(/^approv_[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
  });

  it('increase within a process, also within one millisecond', () => {
    const ids = Array.from({ length: 10_000 }, newAuditId);
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1])).toBe(true);
  });
});
