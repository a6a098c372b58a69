export const MAX_ARGUMENT_DEPTH = 64;

/** How mapJson maps a JSON-like value. */
export interface JsonMapping {
  /** Each string value (not keys). */
  string: (text: string) => unknown;
  /** Each object key (array indexes are not keys); as it is by default. */
  key?: (key: string) => string;
  /** A value put in place of an object member's, which is then not walked (a sensitive key's marker); undefined: walk it. */
  member?: (key: string) => unknown;
  /** What replaces an object or array nested `maxDepth` levels down (the value itself is level 0); the value as it is by default. */
  tooDeep?: (value: object) => unknown;
  /** MAX_ARGUMENT_DEPTH by default. */
  maxDepth?: number;
  /** 'keep': an object that is not plain (a class instance: a request, a socket) is not data and is returned as it is; 'walk' (default): its own keys are copied like a plain object's. */
  instances?: 'keep' | 'walk';
}

/**
 * A copy of a JSON-like value with its strings and keys mapped, walked `maxDepth` levels deep
 * (recursive, so bounded): arrays stay arrays, every object becomes a plain object, other values
 * stay as they are. Keys are defined, not assigned, so a "__proto__" key stays a plain key.
 */
export function mapJson<T>(value: T, mapping: JsonMapping): T {
  const maxDepth = mapping.maxDepth ?? MAX_ARGUMENT_DEPTH;
  const keepInstances = mapping.instances === 'keep';
  const { string, key: mapKey, member, tooDeep } = mapping;
  const walk = (node: unknown, depth: number): unknown => {
    if (typeof node === 'string') return string(node);
    if (node === null || typeof node !== 'object') return node;
    if (depth >= maxDepth) return tooDeep ? tooDeep(node) : node;
    if (Array.isArray(node)) return node.map((item) => walk(item, depth + 1));
    if (keepInstances) {
      const proto: unknown = Object.getPrototypeOf(node);
      if (proto !== Object.prototype && proto !== null) return node;
    }
    // Object.fromEntries defines its keys, so a "__proto__" key stays a plain key.
    return Object.fromEntries(
      Object.entries(node).map(([key, item]) => {
        const replaced = member?.(key);
        return [mapKey ? mapKey(key) : key, replaced !== undefined ? replaced : walk(item, depth + 1)];
      }),
    );
  };
  return walk(value, 0) as T;
}

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
