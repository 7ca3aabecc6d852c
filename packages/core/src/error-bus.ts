import { errorMessage, type PersistError } from "./errors.js";
import { processWide } from "./process-wide.js";

/** Receives every error an adapter reports; see {@link listenError}. */
export type ErrorListener = (error: PersistError) => void;

// Shared by every copy of core in the process (ESM and CommonJS).
const errorListeners = processWide("error-listeners", () => new Set<ErrorListener>());

/**
 * Subscribes to the errors of every {@link PersistSignalAdapter} in this process, and to what
 * backends report with {@link reportError}. The error is still thrown to the caller; listeners
 * are for logging and alerting. Returns an unsubscribe.
 * @example const stop = listenError((error) => log.error(error.message)); // later: stop()
 */
export function listenError(listener: ErrorListener): () => void {
  errorListeners.add(listener);
  return () => {
    errorListeners.delete(listener);
  };
}

/**
 * Delivers `error` to every {@link listenError} subscriber. Adapters call it for each failure; a
 * backend calls it to tell about something it works around (a server without TTL indexes, say).
 */
export function reportError(error: PersistError): void {
  for (const listener of [...errorListeners]) {
    try {
      listener(error);
    } catch (listenerError) {
      // A broken listener must neither crash the process nor hide the original error from the
      // caller: it is surfaced apart, as a process warning.
      const warning = new Error(`a listenError listener threw: ${errorMessage(listenerError)}`, {
        cause: listenerError,
      });
      warning.name = "PersistListenerWarning";
      process.emitWarning(warning);
    }
  }
}
