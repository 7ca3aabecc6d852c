export { collectKeys, recordsOf } from "./context.js";
export {
  expectNothingSecret,
  passwordArbitrary,
  secretPieces,
  type TestPassword,
  visibleTexts,
} from "./credentials.js";
export {
  type AdapterWorker,
  exitsAfterClose,
  type KillTrialReport,
  type ProcessTarget,
  type RecordWorker,
  readInFreshProcess,
  runConcurrentWriters,
  runKillTrials,
  startAdapterWorker,
  startRecordWorker,
  writeInFreshProcess,
} from "./processes.js";
export { chaosOperations } from "./promises/chaos.js";
export { raceRounds } from "./promises/conditions.js";
export { INVALID_ROWS } from "./promises/invalid-and-corrupt.js";
export { ownershipTimes } from "./promises/ownership.js";
export { assertRevisionsKept } from "./promises/revisions.js";
export { assertRoundTripThenClose } from "./round-trip.js";
export {
  finiteNumber,
  INVALID_NAMES,
  jsonValue,
  makeSignalRow,
  makeTrialRow,
  price,
  signalRow,
  TRICKY_NAMES,
  timestamp,
} from "./rows.js";
export { assertScopesIsolated } from "./scopes.js";
export { CONTRACT_PROMISES, type ContractPromise, runPersistContract } from "./suite.js";
export type { ContractInitializer, ContractOptions, ContractRunner, RawAccess, WorkerAccess } from "./types.js";
export type { AdapterCommand, RecordAnswer, RecordCommand } from "./worker.js";
