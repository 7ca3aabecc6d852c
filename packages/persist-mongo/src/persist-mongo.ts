import { type PersistError, type PersistOptions, RecordSignalStore } from "@persist-kit/core";
import type { MongoClient } from "mongodb";
import type { MongoDurabilityReport } from "./durability.js";
import { DEFAULT_COLLECTION, MongoRecordStore, type MongoRecordStoreOptions } from "./mongo-record-store.js";

/** Options of {@link PersistMongo}. */
export interface PersistMongoOptions extends PersistOptions, MongoRecordStoreOptions {
  /**
   * Unused, kept so existing code compiles: this layout needs no TTL index, and durability
   * warnings go to core's `listenWarning`. Default: none.
   */
  onWarning?: (warning: PersistError) => void;
}

/**
 * Keeps each open signal in MongoDB, in namespace `"signal"` of a {@link MongoRecordStore}: one
 * document per change, decided by an insert on a unique `_id`, written with write concern
 * `{ w: "majority", j: true }`. Works with MongoDB 4.4+ and MongoDB-compatible servers such as
 * FerretDB, with the same code on both.
 *
 * Pass a URL (the backend owns the client and closes it) or a `MongoClient` (never closed here).
 * Nothing connects before the first operation.
 *
 * @example
 * const persist = new PersistMongo("mongodb://127.0.0.1:27017/trading");
 * await persist.writeSignalData("BTC/USDT", "momentum", row);
 * await persist.readSignalData("BTC/USDT", "momentum"); // row, or null
 * await persist.deleteSignalData("BTC/USDT", "momentum");
 * await persist.close();
 */
export class PersistMongo extends RecordSignalStore<MongoRecordStore> {
  /** The database that holds the collection. */
  readonly databaseName: string;
  /** The collection that holds the documents. */
  readonly collectionName: string;

  /** @param connection a `mongodb://` or `mongodb+srv://` URL, or a connected or unconnected `MongoClient`. */
  constructor(connection: string | MongoClient, options: PersistMongoOptions = {}) {
    const records = new MongoRecordStore(connection, options);
    super(records, options);
    this.databaseName = records.databaseName;
    this.collectionName = records.collectionName;
  }

  /**
   * What the server does to keep acknowledged writes, judged with the write concern this backend
   * sends: the server (`hello`, `buildInfo`, `serverStatus`), `crashSafe` and `warnings`.
   * @example
   * const report = await persist.describeDurability();
   * if (!report.crashSafe) console.warn(report.warnings.join("\n"));
   */
  describeDurability(): Promise<MongoDurabilityReport> {
    return this.records.describeDurability();
  }

  /**
   * Turns every expired signal into a deletion and resolves with how many: reads never return
   * expired rows; this only frees their space.
   */
  deleteExpired(): Promise<number> {
    return this.records.deleteExpired();
  }
}

/**
 * Builds a {@link PersistMongo} from a `mongodb://` or `mongodb+srv://` URL, for `createPersist` in
 * `@persist-kit/core`. The backend owns the client it makes.
 * @example const persist = fromUrl("mongodb://127.0.0.1:27017/trading");
 */
export function fromUrl(url: string, options: PersistMongoOptions & { scope?: string } = {}): PersistMongo {
  const { scope, ...rest } = options;
  // A scope is a collection of its own: `signals` becomes `signals_name`.
  const collectionName =
    scope === undefined ? rest.collectionName : `${rest.collectionName ?? DEFAULT_COLLECTION}_${scope}`;
  return new PersistMongo(url, { ...rest, ...(collectionName === undefined ? {} : { collectionName }) });
}
