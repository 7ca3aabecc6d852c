/**
 * One value per process, shared by every copy of core that is loaded: an application can hold
 * the ESM and the CommonJS build side by side (a CommonJS bot, a backend loaded as ESM), and a
 * listener, a warning channel or the config set through one copy must reach the other.
 * @example const listeners = processWide("error-listeners", () => new Set<ErrorListener>());
 */
export function processWide<T>(name: string, make: () => T): T {
  const key = Symbol.for(`persist-kit.${name}`);
  const shared = globalThis as unknown as Record<symbol, T | undefined>;
  shared[key] ??= make();
  return shared[key] as T;
}
