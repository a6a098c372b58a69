export const MAX_ARGUMENT_DEPTH = 64;

/**
 * True when `value` nests objects/arrays more than `maxDepth` levels (the value itself is level 1).
 * Iterative, and stops at the first level too deep, so a 10,000-deep array costs nothing.
 */
export function exceedsDepth(value: unknown, maxDepth: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > maxDepth) return true;
    for (const child of Object.values(node)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/**
 * Visits every object key of a value already known to be within MAX_ARGUMENT_DEPTH, iteratively.
 * `visit` returns true to stop; the walk then returns the key path that stopped it.
 */
export function findKey(value: unknown, visit: (key: string) => boolean): string | undefined {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    const isArray = Array.isArray(node);
    for (const [key, child] of Object.entries(node)) {
      const childPath = isArray ? `${path}[${key}]` : path ? `${path}.${key}` : key;
      if (!isArray && visit(key)) return childPath;
      if (child !== null && typeof child === 'object') stack.push([child, childPath]);
    }
  }
  return undefined;
}

/** How many keys and array items `value` holds, counting no further than `stopAfter` + 1. */
export function countEntries(value: unknown, stopAfter: number): number {
  const stack: unknown[] = [value];
  let count = 0;
  while (stack.length > 0 && count <= stopAfter) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    for (const child of Object.values(node)) {
      count += 1;
      if (child !== null && typeof child === 'object') stack.push(child);
    }
  }
  return count;
}

/** Every object key of a value already known to be within MAX_ARGUMENT_DEPTH, each once. */
export function allKeys(value: unknown): Set<string> {
  const keys = new Set<string>();
  findKey(value, (key) => {
    keys.add(key);
    return false;
  });
  return keys;
}
