// For bot authors: signals, the adapter, errors, createPersist and the memory backend.

export { assertJsonText, BaseRecordStore, type ListRequest, recordContext } from "./backend-kit/base-record-store.js";
export {
  type DriverErrorRules,
  isSocketError,
  UNAVAILABLE_SOCKET_CODES,
  wrapDriverError,
} from "./backend-kit/driver-errors.js";
export { KeyedQueue } from "./backend-kit/keyed-queue.js";
export { Lifecycle } from "./backend-kit/lifecycle.js";
export { assertExclusiveOptions, type WholeNumberBounds, wholeNumberOption } from "./backend-kit/options.js";
export { RetryingOnce } from "./backend-kit/retrying-once.js";
export { connectionSecrets, connectionUrlSecrets } from "./backend-kit/url-secrets.js";
export { getConfig, type PersistConfig, type PersistSource, setConfig } from "./config.js";
export {
  type BackendModule,
  type ClosablePersist,
  type CreatePersistOptions,
  createPersist,
  type FromUrlOptions,
} from "./create-persist.js";
export { type ErrorListener, listenError, reportError } from "./error-bus.js";
export {
  BackendClosedError,
  BackendUnavailableError,
  CorruptDataError,
  errorMessage,
  InvalidKeyError,
  InvalidOptionError,
  InvalidSignalError,
  type LeaseHolder,
  NotDurableError,
  OwnershipError,
  OwnershipLostError,
  PERSIST_ERROR_CODES,
  PersistError,
  type PersistErrorCode,
  type PersistErrorContext,
  type PersistOperation,
  type PersistOutcome,
  redactCredentials,
  scrubError,
} from "./errors.js";
export { HoldingRecordStore } from "./records/holding-store.js";
export { MemoryRecordStore, PersistMemory } from "./records/memory.js";
export {
  assertRecordCondition,
  assertRecordKey,
  MAX_KEY_PARTS,
  namespaceProblem,
  recordGroupId,
  recordKeyId,
  recordKeyProblem,
} from "./records/record-key.js";
// For backend authors: the record store and the kit every bundled backend is built with.
export {
  decideCondition,
  type ListedRecord,
  MAX_REVISION,
  type RecordChange,
  type RecordCondition,
  type RecordDeleteOptions,
  type RecordEntry,
  type RecordKey,
  type RecordListOptions,
  type RecordPage,
  type RecordRead,
  type RecordStore,
  type RecordStoreCapabilities,
  type RecordWriteOptions,
} from "./records/record-store.js";
export { RecordSignalStore, SIGNAL_NAMESPACE, type SignalRecord, signalRecordKey } from "./records/signal-store.js";
export { PersistSignalAdapter, type SignalAdapterOptions } from "./signals/adapter.js";
export { assertSignalKey, keyProblem, MAX_KEY_BYTES, type SignalKey, signalKeyId } from "./signals/key.js";
export {
  instant,
  LEASE_NAMESPACE,
  Lease,
  type LeaseOwner,
  leaseIsCurrent,
  leaseRecordKey,
  newLeaseOwner,
  OWNERSHIP_GAP,
  releaseLease,
  renewLease,
  takeLease,
} from "./signals/ownership.js";
export type { PersistBase, PersistOptions, SignalEntry } from "./signals/persist-base.js";
export {
  assertSignalRow,
  checkStoredSignalRow,
  decodeStoredText,
  type ISignalPartialClose,
  type ISignalRow,
  isSignalRow,
  type JsonValue,
  MAX_ROW_DEPTH,
  parseSignalRow,
  type SignalPosition,
  serializeSignalRow,
  signalRowProblem,
  signalRowText,
} from "./signals/row.js";
export { assertTtl, MAX_TTL_MS } from "./ttl.js";
export { listenWarning, type PersistWarning, reportWarning, type WarningListener } from "./warnings.js";
