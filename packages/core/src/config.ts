import { processWide } from "./process-wide.js";
import type { PersistBase } from "./signals/persist-base.js";

/** A backend, or a function that makes one on first use. */
export type PersistSource = PersistBase | (() => PersistBase | Promise<PersistBase>);

/** Process-wide defaults. */
export interface PersistConfig {
  /**
   * The backend adapters use when none is passed to their constructor.
   * Default: `createPersist(process.env.PERSIST_URL ?? "file:./data")`, made on first use.
   */
  persistAdapter?: PersistSource;
}

// Shared by every copy of core in the process (ESM and CommonJS).
const shared = processWide("config", () => ({ config: {} as PersistConfig }));

/**
 * Sets process-wide defaults; adapters constructed without a backend pick them up at their first
 * operation.
 * @example setConfig({ persistAdapter: () => createPersist("redis://127.0.0.1:6379") });
 */
export function setConfig(next: PersistConfig): void {
  shared.config = { ...shared.config, ...next };
}

/** The current process-wide defaults. */
export function getConfig(): Readonly<PersistConfig> {
  return shared.config;
}
