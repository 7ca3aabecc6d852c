export type { FileDurabilityReport } from "./durability.js";
export {
  decodeName,
  encodeName,
  namespaceDirectory,
  RECORDS_DIRECTORY,
  type RecordLocation,
  recordLocation,
  signalFilePath,
  signalLocation,
} from "./file-names.js";
export { FileRecordStore, type FileRecordStoreOptions } from "./file-record-store.js";
export { fromUrl, PersistFile, type PersistFileOptions } from "./persist-file.js";

/** This package's name: `createPersist(url, { backends: [thisModule] })` finds it by it (a bundled application). */
export const packageName = "@persist-kit/persist-file";
