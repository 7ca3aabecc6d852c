export type {
  MongoDurabilityReport,
  MongoServerDurability,
  MongoWriteConcern,
} from "./durability.js";
export { isDuplicateKeyError, isUnavailableError, mongoErrorRules } from "./errors.js";
export { MongoRecordStore, type MongoRecordStoreOptions } from "./mongo-record-store.js";
export { fromUrl, PersistMongo, type PersistMongoOptions } from "./persist-mongo.js";
export {
  DOCUMENT_FORMAT,
  keyDocumentPrefix,
  keyDocumentRange,
  parseRecordDocumentId,
  type RecordDocument,
  recordDocumentId,
} from "./record-document.js";

/** This package's name: `createPersist(url, { backends: [thisModule] })` finds it by it (a bundled application). */
export const packageName = "@persist-kit/persist-mongo";
