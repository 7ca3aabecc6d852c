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
