import {
  assertSignalKey,
  assertSignalRow,
  assertTtl,
  checkStoredSignalRow,
  errorMessage,
  expiresAt,
  type ISignalRow,
  type PersistBase,
  PersistError,
  type PersistErrorContext,
  type PersistOptions,
  parseSignalRow,
  reportError,
  type SignalEntry,
  type SignalKey,
  serializeSignalRow,
} from "@persist-kit/core";
import {
  type AnyBulkWriteOperation,
  type Collection,
  type Filter,
  MongoClient,
  type MongoClientOptions,
  type UpdateFilter,
  type WriteConcernSettings,
} from "mongodb";
import { isDuplicateKeyError, isNotImplementedError, mongoError } from "./errors.js";
import { type SignalDocument, signalDocumentId } from "./signal-document.js";

const BACKEND = "mongo";
const DEFAULT_DATABASE = "persist_kit";
const DEFAULT_COLLECTION = "signals";
// `journal: true` is the driver's spelling of `j: true`: acknowledged once in the on-disk journal.
const DEFAULT_WRITE_CONCERN: WriteConcernSettings = { w: "majority", journal: true };
const DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_SOCKET_TIMEOUT_MS = 30_000;
const STRATEGY_INDEX = "strategyName_1";
const TTL_INDEX = "expiresAt_ttl";

/** Options of {@link PersistMongo}. */
export interface PersistMongoOptions extends PersistOptions {
  /** Database. Default: the URL's path (`mongodb://host/trading` uses `trading`), else (and with a client) `"persist_kit"`. */
  databaseName?: string;
  /** Collection with one document per signal, dedicated to this backend. Default: `"signals"`. */
  collectionName?: string;
  /** Write concern of writes and deletes. Default: `{ w: "majority", journal: true }` (`j: true`). */
  writeConcern?: WriteConcernSettings;
  /** How long an operation looks for a usable server before it fails. Default: `5000`; URL only. */
  serverSelectionTimeoutMS?: number;
  /** How long opening a TCP connection may take. Default: `5000`; URL only. */
  connectTimeoutMS?: number;
  /** How long a connection waits for an answer before it is dropped. Default: `30000`; URL only. */
  socketTimeoutMS?: number;
  /** More `MongoClient` options; the three timeouts above win. Default: none; URL only. */
  clientOptions?: MongoClientOptions;
  /**
   * Receives what the backend cannot do as configured, once per backend (today: a server without
   * TTL indexes). Default: core's `reportError`, which delivers it to every `listenError`
   * subscriber, and `process.emitWarning`, which prints it to stderr.
   */
  onWarning?: (warning: PersistError) => void;
}

type KeyContext = PersistErrorContext & { strategyName: string; symbol: string };

/**
 * Keeps each open signal as one MongoDB document whose `_id` is the key, written with a single
 * upsert under write concern `{ w: "majority", j: true }`: a crash at any moment leaves the old
 * row or the new one. Works with MongoDB 4.4+ and MongoDB-compatible servers such as FerretDB.
 *
 * Pass a URL (the backend owns the client and closes it) or a `MongoClient` (never closed here).
 * Nothing connects before the first operation; that operation first creates the indexes.
 *
 * @example
 * const persist = new PersistMongo("mongodb://127.0.0.1:27017/trading");
 * await persist.writeSignalData("BTC/USDT", "momentum", row);
 * await persist.readSignalData("BTC/USDT", "momentum"); // row, or null
 * await persist.deleteSignalData("BTC/USDT", "momentum");
 * await persist.close();
 */
export class PersistMongo implements PersistBase {
  readonly name = BACKEND;
  /** The database that holds the collection. */
  readonly databaseName: string;
  /** The collection that holds one document per signal. */
  readonly collectionName: string;
  readonly #client: MongoClient;
  readonly #ownsClient: boolean;
  readonly #ttlMs: number | undefined;
  readonly #writeConcern: WriteConcernSettings;
  readonly #onWarning: (warning: PersistError) => void;
  #ready: Promise<Collection<SignalDocument>> | undefined;
  #closing: Promise<void> | undefined;
  #active = 0;
  #idle: (() => void) | undefined;

  /**
   * @param connection a `mongodb://` or `mongodb+srv://` URL, or a connected or unconnected `MongoClient`.
   */
  constructor(connection: string | MongoClient, options: PersistMongoOptions = {}) {
    this.#ttlMs = assertTtl(options.ttlMs, BACKEND);
    this.#ownsClient = typeof connection === "string";
    this.#client = typeof connection === "string" ? createClient(connection, options) : connection;
    const urlDatabase = typeof connection === "string" ? databaseNameFromUrl(connection) : undefined;
    this.databaseName = options.databaseName ?? urlDatabase ?? DEFAULT_DATABASE;
    this.collectionName = options.collectionName ?? DEFAULT_COLLECTION;
    this.#writeConcern = options.writeConcern ?? DEFAULT_WRITE_CONCERN;
    this.#onWarning = options.onWarning ?? reportWarning;
  }

  async writeSignalData(symbol: string, strategyName: string, row: ISignalRow): Promise<void> {
    const context = { backend: BACKEND, operation: "write", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    assertSignalRow(row, context);
    const filter = { _id: signalDocumentId(symbol, strategyName) };
    const update = this.#signalUpdate(symbol, strategyName, row);
    await this.#run(context, (collection) =>
      retryDuplicateKey(() => collection.updateOne(filter, update, { upsert: true })),
    );
  }

  async readSignalData(symbol: string, strategyName: string): Promise<ISignalRow | null> {
    const context = { backend: BACKEND, operation: "read", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    const id = signalDocumentId(symbol, strategyName);
    return this.#run(context, async (collection) => {
      const document = await collection.findOne({ _id: id, ...unexpired() });
      return document === null ? null : storedSignal(document, context, this.#location(id));
    });
  }

  async deleteSignalData(symbol: string, strategyName: string): Promise<void> {
    const context = { backend: BACKEND, operation: "delete", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    const filter = { _id: signalDocumentId(symbol, strategyName) };
    await this.#run(context, (collection) => collection.deleteOne(filter));
  }

  /** Every stored key whose row has not expired. */
  async *keys(): AsyncIterable<SignalKey> {
    const context = { backend: BACKEND, operation: "keys" } as const;
    const collection = await this.#run(context, async (ready) => ready);
    const cursor = collection.find<SignalKey>(unexpired(), { projection: { _id: 0, strategyName: 1, symbol: 1 } });
    try {
      for await (const { strategyName, symbol } of cursor) yield { strategyName, symbol };
    } catch (error) {
      throw mongoError(error, context, this.#location());
    } finally {
      await cursor.close();
    }
  }

  /**
   * Writes the entries with one ordered bulk write, after validating all of them (an invalid entry
   * means nothing is written). Not a transaction: when the server fails midway, the entries before
   * the failing one stay written, and the error says so.
   */
  async writeMany(entries: readonly SignalEntry[]): Promise<void> {
    const context = { backend: BACKEND, operation: "writeMany" } as const;
    for (const { symbol, strategyName, row } of entries) {
      assertSignalKey(symbol, strategyName, context);
      assertSignalRow(row, { ...context, symbol, strategyName });
    }
    if (entries.length === 0) return;
    const operations: AnyBulkWriteOperation<SignalDocument>[] = entries.map(({ symbol, strategyName, row }) => ({
      updateOne: {
        filter: { _id: signalDocumentId(symbol, strategyName) },
        update: this.#signalUpdate(symbol, strategyName, row),
        upsert: true,
      },
    }));
    await this.#run(context, (collection) =>
      retryDuplicateKey(() => collection.bulkWrite(operations, { ordered: true })),
    );
  }

  /**
   * Deletes every expired document and resolves with how many. Reads never return expired rows;
   * this only frees the space, for servers without TTL indexes (FerretDB 1.x).
   */
  async deleteExpired(): Promise<number> {
    const context = { backend: BACKEND, operation: "delete" } as const;
    const expired: Filter<SignalDocument> = { expiresAt: { $lte: new Date() } };
    const result = await this.#run(context, (collection) => collection.deleteMany(expired));
    return result.deletedCount;
  }

  /** Resolves when the server answers and the indexes exist; rejects with a backend error otherwise. */
  async ping(): Promise<void> {
    const context = { backend: BACKEND, operation: "ping" } as const;
    await this.#run(context, () => this.#client.db(this.databaseName).command({ ping: 1 }));
  }

  /**
   * Waits for running operations, then closes the client when the backend made it from a URL; a
   * client passed in stays open. Later operations reject with a `PersistError`; closing twice is
   * harmless.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Operations already started finish first, as with every other backend.
      if (this.#active > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
      if (this.#ownsClient) await this.#client.close();
    })();
    return this.#closing.catch((error: unknown) => {
      throw mongoError(error, { backend: BACKEND, operation: "close" }, this.#location());
    });
  }

  // Without a TTL, an overwrite also removes the expiry a TTL writer may have left on the document.
  #signalUpdate(symbol: string, strategyName: string, row: ISignalRow): UpdateFilter<SignalDocument> {
    const now = Date.now();
    const fields = { strategyName, symbol, signal: serializeSignalRow(row), updatedAt: new Date(now) };
    const expires = expiresAt(this.#ttlMs, now);
    if (expires === undefined) return { $set: fields, $unset: { expiresAt: "" } };
    return { $set: { ...fields, expiresAt: new Date(expires) } };
  }

  async #run<T>(context: PersistErrorContext, operation: (collection: Collection<SignalDocument>) => Promise<T>) {
    const collection = this.#collection(context);
    this.#active++;
    try {
      return await operation(await collection);
    } catch (error) {
      throw mongoError(error, context, this.#location());
    } finally {
      this.#active--;
      if (this.#active === 0) this.#idle?.();
    }
  }

  // The indexes exist before the first operation runs; a failed attempt is retried by the next one.
  #collection(context: PersistErrorContext): Promise<Collection<SignalDocument>> {
    if (this.#closing !== undefined) throw new PersistError("the backend is closed", context);
    if (this.#ready === undefined) {
      const ready = this.#prepareCollection();
      this.#ready = ready;
      ready.catch(() => {
        if (this.#ready === ready) this.#ready = undefined;
      });
    }
    return this.#ready;
  }

  // `_id` is already unique, so the key needs no index of its own; strategyName serves listings.
  async #prepareCollection(): Promise<Collection<SignalDocument>> {
    // When the driver's automatic first connect fails, it keeps the closed topology and every later
    // operation fails with "Topology is closed"; an explicit connect() replaces it. A client passed
    // in is left to its owner, so one they closed is never reopened here.
    if (this.#ownsClient) await this.#client.connect();
    const database = this.#client.db(this.databaseName);
    const collection = database.collection<SignalDocument>(this.collectionName, { writeConcern: this.#writeConcern });
    await collection.createIndex({ strategyName: 1 }, { name: STRATEGY_INDEX });
    if (this.#ttlMs !== undefined) await this.#createTtlIndex(collection);
    return collection;
  }

  // Reads filter on expiresAt anyway (MongoDB's TTL monitor runs only every 60 s); the index just
  // removes expired documents. FerretDB 1.x has no TTL indexes: say so, and carry on without one.
  async #createTtlIndex(collection: Collection<SignalDocument>): Promise<void> {
    try {
      await collection.createIndex({ expiresAt: 1 }, { name: TTL_INDEX, expireAfterSeconds: 0 });
    } catch (error) {
      if (!isNotImplementedError(error)) throw error;
      const message =
        `the server has no TTL indexes (${errorMessage(error)}); expired signals read as null, ` +
        "but stay stored until deleteExpired() removes them";
      this.#onWarning(new PersistError(message, { backend: BACKEND, operation: "init", cause: error }));
    }
  }

  #location(id?: string): string {
    const collection = `${this.databaseName}.${this.collectionName}`;
    return id === undefined ? collection : `${collection} document ${id}`;
  }
}

/**
 * Builds a {@link PersistMongo} from a `mongodb://` or `mongodb+srv://` URL, for `createPersist` in
 * `@persist-kit/core`. The backend owns the client it makes.
 * @example const persist = fromUrl("mongodb://127.0.0.1:27017/trading");
 */
export function fromUrl(url: string, options: PersistMongoOptions = {}): PersistMongo {
  return new PersistMongo(url, options);
}

function reportWarning(warning: PersistError): void {
  reportError(warning);
  process.emitWarning(warning);
}

function createClient(url: string, options: PersistMongoOptions): MongoClient {
  try {
    return new MongoClient(url, {
      appName: "persist-kit",
      ...options.clientOptions,
      serverSelectionTimeoutMS: options.serverSelectionTimeoutMS ?? DEFAULT_SERVER_SELECTION_TIMEOUT_MS,
      connectTimeoutMS: options.connectTimeoutMS ?? DEFAULT_CONNECT_TIMEOUT_MS,
      socketTimeoutMS: options.socketTimeoutMS ?? DEFAULT_SOCKET_TIMEOUT_MS,
    });
  } catch (error) {
    throw new PersistError(`cannot use ${url}: ${errorMessage(error)}`, {
      backend: BACKEND,
      operation: "create",
      cause: error,
    });
  }
}

// The path of `mongodb://user:pass@host1,host2:27017/trading?replicaSet=rs` names the database.
// The WHATWG URL parser rejects host lists, so the path is cut out by hand; the driver has already
// parsed and percent-decoded the same URL, so decoding cannot fail here.
function databaseNameFromUrl(url: string): string | undefined {
  const path = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]*)/i.exec(url)?.[1];
  return path ? decodeURIComponent(path) : undefined;
}

// Built from constants and the clock only, never from names: user input stays out of query shape.
function unexpired(): Filter<SignalDocument> {
  return { expiresAt: { $not: { $lte: new Date() } } };
}

// Two upserts of a missing key can both try to insert it; the loser gets a duplicate-key error
// although the document now exists, so one more try updates it.
async function retryDuplicateKey<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
    return write();
  }
}

// `signal` is JSON text (see SignalDocument); anything else there was written by another program
// and is still validated, so it reads as a row or a CorruptDataError, never as null.
function storedSignal(document: SignalDocument, context: KeyContext, location: string): ISignalRow {
  const { signal } = document as { signal: unknown };
  if (typeof signal === "string") return parseSignalRow(signal, context, location);
  return checkStoredSignalRow(signal, context, location);
}
