export { type ErrorListener, listenError, PersistSignalAdapter, reportError } from "./adapter.js";
export { getConfig, type PersistConfig, type PersistSource, setConfig } from "./config.js";
export { type BackendModule, type CreatePersistOptions, createPersist } from "./create-persist.js";
export {
  BackendUnavailableError,
  CorruptDataError,
  errorMessage,
  InvalidKeyError,
  InvalidSignalError,
  PersistError,
  type PersistErrorContext,
  type PersistOperation,
  redactCredentials,
} from "./errors.js";
export { assertSignalKey, keyProblem, MAX_KEY_BYTES, type SignalKey, signalKeyId } from "./key.js";
export { PersistMemory } from "./memory.js";
export type { PersistBase, PersistOptions, SignalEntry } from "./persist-base.js";
export {
  assertSignalRow,
  checkStoredSignalRow,
  decodeStoredText,
  type ISignalPartialClose,
  type ISignalRow,
  isSignalRow,
  type JsonValue,
  parseSignalRow,
  type SignalPosition,
  serializeSignalRow,
  signalRowProblem,
} from "./signal.js";
export { assertTtl, expiresAt } from "./ttl.js";
