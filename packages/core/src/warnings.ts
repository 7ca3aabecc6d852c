import { errorMessage, redactCredentials } from "./errors.js";
import { processWide } from "./process-wide.js";

/** Something a backend works around or a setting that can lose data: not an error, never thrown. */
export interface PersistWarning {
  /** Backend name, for example `"redis"`. */
  readonly backend: string;
  /**
   * Stable kind: `"durability"` (a server setting that can lose acknowledged writes),
   * `"capability"` (a server without a feature the backend works around).
   */
  readonly kind: "durability" | "capability";
  /** What was found and what to change. Credentials are redacted. */
  readonly message: string;
  /** Details, for example the server address and the setting. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Receives every warning; see {@link listenWarning}. */
export type WarningListener = (warning: PersistWarning) => void;

// Shared by every copy of core in the process (ESM and CommonJS).
const warningListeners = processWide("warning-listeners", () => new Set<WarningListener>());

/**
 * Subscribes to warnings of every backend in this process: settings that can lose acknowledged
 * writes (Redis without an fsynced append-only file, PostgreSQL with `synchronous_commit=off`, a
 * MongoDB write concern without journal), features a server lacks. Warnings travel apart from
 * errors: nothing failed. With no listener, each warning becomes a process warning
 * (`PersistWarning`), so it is never silent. Returns an unsubscribe.
 * @example const stop = listenWarning((warning) => alert(`${warning.backend}: ${warning.message}`));
 */
export function listenWarning(listener: WarningListener): () => void {
  warningListeners.add(listener);
  return () => {
    warningListeners.delete(listener);
  };
}

/** Delivers `warning` to every {@link listenWarning} subscriber, or emits a process warning when there is none. */
export function reportWarning(warning: PersistWarning): void {
  const safe: PersistWarning = { ...warning, message: redactCredentials(warning.message) };
  if (warningListeners.size === 0) {
    process.emitWarning(`[${safe.backend}] ${safe.message}`, {
      type: "PersistWarning",
      code: `PERSIST_${safe.kind.toUpperCase()}`,
    });
    return;
  }
  for (const listener of [...warningListeners]) {
    try {
      listener(safe);
    } catch (listenerError) {
      const failure = new Error(`a listenWarning listener threw: ${errorMessage(listenerError)}`, {
        cause: listenerError,
      });
      failure.name = "PersistListenerWarning";
      process.emitWarning(failure);
    }
  }
}
