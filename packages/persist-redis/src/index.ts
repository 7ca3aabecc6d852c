export { PersistRedisBatch, type PersistRedisBatchOptions } from "./batch.js";
export type { RedisDurabilityReport, RedisServerDurability } from "./durability.js";
export { fromUrl, PersistRedis, type PersistRedisOptions } from "./persist-redis.js";
export {
  DEFAULT_PREFIX,
  decodeName,
  encodeName,
  parseSignalRedisKey,
  signalKeyPattern,
  signalRedisKey,
} from "./redis-keys.js";
