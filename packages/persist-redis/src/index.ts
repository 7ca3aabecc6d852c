export { PersistRedisBatch, type PersistRedisBatchOptions } from "./batch.js";
export type { RedisDurabilityReport, RedisServerDurability } from "./durability.js";
export { fromUrl, PersistRedis, type PersistRedisOptions } from "./persist-redis.js";
export {
  DEFAULT_PREFIX,
  decodeRedisKeyName,
  encodeRedisKeyName,
  floorRedisKey,
  parseRecordRedisKey,
  parseSignalRedisKey,
  recordKeyPattern,
  recordRedisKey,
  signalRedisKey,
} from "./redis-keys.js";
export {
  type BatchChange,
  type BatchResult,
  RedisRecordStore,
  type RedisRecordStoreOptions,
} from "./redis-record-store.js";
export { parseStoredRecord, STORED_RECORD_VERSION, type StoredRecord, storedRecordText } from "./stored-record.js";

/** This package's name: `createPersist(url, { backends: [thisModule] })` finds it by it (a bundled application). */
export const packageName = "@persist-kit/persist-redis";
