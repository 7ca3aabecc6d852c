export {
  exitsAfterClose,
  type KillTrialReport,
  type ProcessTarget,
  readInFreshProcess,
  runConcurrentWriters,
  runKillTrials,
  writeInFreshProcess,
} from "./processes.js";
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
export { INVALID_ROWS, runPersistContract } from "./suite.js";
export type { ContractInitializer, ContractOptions, ContractRunner, RawAccess, WorkerAccess } from "./types.js";
