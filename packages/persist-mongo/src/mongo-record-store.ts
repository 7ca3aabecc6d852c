import { randomBytes } from "node:crypto";
import {
  BaseRecordStore,
  CorruptDataError,
  connectionSecrets,
  decideCondition,
  errorMessage,
  InvalidOptionError,
  type ListRequest,
  type PersistError,
  PersistError as PersistErrorClass,
  type PersistErrorContext,
  type RecordChange,
  type RecordCondition,
  type RecordEntry,
  type RecordKey,
  type RecordPage,
  type RecordRead,
  type RecordStoreCapabilities,
  RetryingOnce,
  recordContext,
  wholeNumberOption,
} from "@persist-kit/core";
import { type Collection, type Filter, MongoClient, type MongoClientOptions, type WriteConcernSettings } from "mongodb";
import {
  checkDurableSettings,
  describeServers,
  type MongoDurabilityReport,
  type MongoWriteConcern,
  readServerDurability,
  resolveWriteConcern,
} from "./durability.js";
import { isDuplicateKeyError, UnchangedError, wrapMongoError } from "./errors.js";
import {
  DOCUMENT_FORMAT,
  keyDocumentPrefix,
  keyDocumentRange,
  listDocumentRanges,
  MAX_ANCESTORS,
  type RecordDocument,
  recordDocumentId,
  recordDocumentProblem,
} from "./record-document.js";
import { ServerClock } from "./server-clock.js";

const BACKEND = "mongo";
const DEFAULT_DATABASE = "persist_kit";
export const DEFAULT_COLLECTION = "signals";
// When crashed writers left a longer chain behind, it is read once this deep and collected.
const GARBAGE_WINDOW = 100;
// Keys whose last known head this store remembers (a hint, verified on use); the oldest is forgotten.
const MAX_HINTS = 10_000;
// Successors followed from a hint before the key is read by its `_id` range instead.
const MAX_WALK = 8;
// Each lost attempt means another writer changed the key; this many in a row is a storm, not a race.
const MAX_ATTEMPTS = 50;

/** Options of {@link MongoRecordStore}. */
export interface MongoRecordStoreOptions {
  /** Database. Default: the URL's path (`mongodb://host/trading` uses `trading`), else (and with a client) `"persist_kit"`. */
  databaseName?: string;
  /** Collection holding the documents of this store alone. Default: `"signals"`. */
  collectionName?: string;
  /**
   * Write concern of every insert and delete; the fields left out keep the default, and the
   * connection string's or the client's write concern never applies. `w: 0` is refused
   * (`InvalidOptionError`); `j: false` or a `w` other than `"majority"` is reported as a durability
   * warning (core's `listenWarning`). Default: `{ w: "majority", journal: true }` (`j: true`).
   */
  writeConcern?: WriteConcernSettings;
  /**
   * Refuse, with `NotDurableError` at construction, a write concern that can lose acknowledged
   * changes (`j: false`, a `w` other than `"majority"`) instead of warning. Default: `false`.
   */
  requireDurable?: boolean;
  /** How long an operation looks for a usable server before it fails. Default: `5000`; URL only. */
  serverSelectionTimeoutMS?: number;
  /** How long opening a TCP connection may take. Default: `5000`; URL only. */
  connectTimeoutMS?: number;
  /** How long a connection waits for an answer before it is dropped. Default: `30000`; URL only. */
  socketTimeoutMS?: number;
  /** More `MongoClient` options; the three timeouts above win. Default: none; URL only. */
  clientOptions?: MongoClientOptions;
}

type ChangeBody = { value: string; expiresAt?: Date } | { deleted: true };

/**
 * Records in one MongoDB collection, one document per change of a key (see `RecordDocument`),
 * decided by inserts on a unique `_id` only, so conditions hold on MongoDB and on servers whose
 * updates are not atomic (FerretDB 1.x). No transactions and no TTL index are needed: expiry is
 * decided on read by the server's clock, and superseded documents are deleted by the next change.
 *
 * @example
 * const records = new MongoRecordStore("mongodb://127.0.0.1:27017/trading");
 * const key = { namespace: "signal", parts: ["momentum", "BTC/USDT"] };
 * const { revision } = await records.write(key, '{"id":"s1"}');
 * await records.write(key, '{"id":"s2"}', { condition: { revision } }); // { applied: true, revision: revision + 1 }
 */
export class MongoRecordStore extends BaseRecordStore {
  readonly name = BACKEND;
  readonly capabilities: RecordStoreCapabilities = {
    writeMany: "ordered",
    ttl: true,
    ttlResetsRevision: false,
    durable: true,
  };
  /** The database that holds the collection. */
  readonly databaseName: string;
  /** The collection that holds the documents. */
  readonly collectionName: string;
  readonly #client: MongoClient;
  readonly #ownsClient: boolean;
  readonly #collection: RetryingOnce<Collection<RecordDocument>>;
  readonly #clock: ServerClock;
  readonly #writeConcern: MongoWriteConcern;
  // Every password the store was given: redacted in every error it reports.
  readonly #secrets: readonly string[];
  // Key prefix -> the last head this store saw of the key: a change that was the key's latest at
  // some moment. Only a starting point for exact `_id` lookups (see `#head`), never trusted as is.
  readonly #hints = new Map<string, RecordDocument>();

  /** @param connection a `mongodb://` or `mongodb+srv://` URL (the store owns the client it makes), or a `MongoClient` (never closed here). */
  constructor(connection: string | MongoClient, options: MongoRecordStoreOptions = {}) {
    super();
    assertConnection(connection);
    this.#ownsClient = typeof connection === "string";
    // A URL the driver could read two ways is refused here, before the driver parses it: it would
    // take part of the password for a host name and show it in a connection error.
    this.#secrets = connectionSecrets(BACKEND, {
      urls: [connection],
      passwords: [
        options.clientOptions?.auth?.password,
        typeof connection === "string" ? undefined : connection.options?.credentials?.password,
      ],
    });
    this.#client = typeof connection === "string" ? createClient(connection, options, this.#secrets) : connection;
    const urlDatabase = typeof connection === "string" ? databaseNameFromUrl(connection) : undefined;
    this.databaseName = options.databaseName ?? urlDatabase ?? DEFAULT_DATABASE;
    this.collectionName = options.collectionName ?? DEFAULT_COLLECTION;
    if (options.requireDurable !== undefined && typeof options.requireDurable !== "boolean") {
      throw new InvalidOptionError(`requireDurable must be true or false, got ${String(options.requireDurable)}`, {
        backend: BACKEND,
        operation: "create",
      });
    }
    const { settings: writeConcern, resolved } = resolveWriteConcern(
      this.#client,
      this.databaseName,
      this.collectionName,
      options.writeConcern,
    );
    checkDurableSettings(resolved, options.requireDurable === true);
    this.#writeConcern = resolved;
    this.#collection = new RetryingOnce(async () => {
      // After a failed automatic first connect the driver keeps a closed topology; an explicit
      // connect() replaces it. A client passed in is its owner's to connect.
      if (this.#ownsClient) await this.#client.connect();
      return this.#client.db(this.databaseName).collection<RecordDocument>(this.collectionName, { writeConcern });
    });
    this.#clock = new ServerClock(() => this.#client.db("admin"));
  }

  /**
   * What the server does to keep acknowledged changes, judged with the write concern this store
   * sends: `servers` (from `hello`, `buildInfo` and `serverStatus`), `crashSafe` and `warnings`.
   * @example
   * const report = await records.describeDurability();
   * if (!report.crashSafe) console.warn(report.warnings.join("\n"));
   */
  describeDurability(): Promise<MongoDurabilityReport> {
    const context: PersistErrorContext = { backend: BACKEND, operation: "describe" };
    return this.lifecycle
      .run(context, async () => {
        await this.#collection.get();
        return describeServers([await readServerDurability(this.#client)], this.#writeConcern);
      })
      .catch((error: unknown) => {
        throw this.wrapError(error, context);
      });
  }

  /**
   * Turns every expired record into a deletion (its revision kept, its value dropped) and
   * resolves with how many. Reads never return expired records; this only frees their space.
   * Each key is the one its document's `_id` names, checked: a document that does not fit is a
   * `CorruptDataError` naming its `_id`, and nothing after it is deleted.
   */
  async deleteExpired(): Promise<number> {
    const context: PersistErrorContext = { backend: BACKEND, operation: "delete" };
    const expired = await this.lifecycle
      .run(context, async () => {
        const collection = await this.#collection.get();
        const now = new Date(await this.#clock.now());
        const found = await collection.find({ expiresAt: { $lte: now } }).toArray();
        return found.map((document) => this.#checked(document, context));
      })
      .catch((error: unknown) => {
        throw this.wrapError(error, context);
      });
    let deleted = 0;
    for (const { namespace, parts, revision } of expired) {
      // Applies only while that expired change is still the key's latest one.
      const change = await this.delete({ namespace, parts }, { condition: { revision } });
      if (change.applied) deleted++;
    }
    return deleted;
  }

  protected async readRecord(key: RecordKey, context: PersistErrorContext): Promise<RecordRead> {
    const collection = await this.#collection.get();
    const head = await this.#head(collection, key, context);
    if (head === undefined) return { found: false, revision: 0 };
    if (!(await this.#isLive(head))) return { found: false, revision: head.revision };
    return { found: true, json: head.value as string, revision: head.revision };
  }

  protected async writeRecord(
    key: RecordKey,
    json: string,
    options: { condition: RecordCondition | undefined; ttlMs: number | undefined },
    context: PersistErrorContext,
  ): Promise<RecordChange> {
    return this.#change(key, options.condition, context, false, async () => {
      if (options.ttlMs === undefined) return { value: json };
      return { value: json, expiresAt: new Date((await this.#clock.now()) + options.ttlMs) };
    });
  }

  protected async deleteRecord(
    key: RecordKey,
    condition: RecordCondition | undefined,
    context: PersistErrorContext,
  ): Promise<RecordChange> {
    return this.#change(key, condition, context, true, async () => ({ deleted: true }));
  }

  protected async listRecords(
    namespace: string,
    request: ListRequest,
    context: PersistErrorContext,
  ): Promise<RecordPage> {
    const collection = await this.#collection.get();
    const ranges: Filter<RecordDocument>[] = [{ $or: listDocumentRanges(namespace, request.prefix) }];
    // The cursor is the last key prefix of the previous page; `$` follows every `#` of its documents.
    if (request.cursor !== undefined) ranges.push({ _id: { $gte: `${request.cursor}$` } });
    const documents = collection.find({ $and: ranges }).sort({ _id: 1 });
    const records: { parts: string[]; revision: number; prefix: string }[] = [];
    let more = false;
    try {
      let head: RecordDocument | undefined;
      for await (const document of documents) {
        const checked = this.#checked(document, context);
        if (head !== undefined && keyDocumentPrefix(head) !== keyDocumentPrefix(checked)) {
          if (await this.#isLive(head))
            records.push({ parts: head.parts, revision: head.revision, prefix: keyDocumentPrefix(head) });
        }
        head = checked;
        if (records.length > request.limit) break;
      }
      if (head !== undefined && records.length <= request.limit && (await this.#isLive(head))) {
        records.push({ parts: head.parts, revision: head.revision, prefix: keyDocumentPrefix(head) });
      }
    } finally {
      await documents.close();
    }
    if (records.length > request.limit) {
      more = true;
      records.length = request.limit;
    }
    return {
      records: records.map(({ parts, revision }) => ({ parts, revision })),
      cursor: more ? records.at(-1)?.prefix : undefined,
    };
  }

  /**
   * One change after the other, each as `write` makes it. A failure stops the batch; its error
   * names the entries that were written and the one that may have been.
   */
  protected override async writeManyRecords(
    entries: readonly RecordEntry[],
    ttlMs: number | undefined,
    context: PersistErrorContext,
  ): Promise<void> {
    for (const [index, { key, json }] of entries.entries()) {
      const entryContext = recordContext(BACKEND, "writeMany", key);
      try {
        await this.writeRecord(key, json, { condition: undefined, ttlMs }, entryContext);
      } catch (error) {
        throw this.#writeManyError(error, index, entries.length, context);
      }
    }
  }

  protected async pingStore(): Promise<void> {
    await this.#collection.get();
    await this.#client.db(this.databaseName).command({ ping: 1 });
  }

  protected async closeStore(): Promise<void> {
    if (this.#ownsClient) await this.#client.close();
  }

  protected wrapError(error: unknown, context: PersistErrorContext): PersistError {
    const withSecrets: PersistErrorContext = { ...context, secrets: this.#secrets };
    return wrapMongoError(error, withSecrets, `${this.databaseName}.${this.collectionName}`);
  }

  /**
   * Reads the key, decides the condition, and inserts the change as the successor of the revision
   * read. A lost insert (another writer took that successor) is read and decided again. A won
   * insert is kept only if nothing newer was already there (see `#wasKept`); one that landed
   * below a newer change was never visible, is removed, and the key is read again.
   */
  async #change(
    key: RecordKey,
    condition: RecordCondition | undefined,
    context: PersistErrorContext,
    isDelete: boolean,
    body: () => Promise<ChangeBody>,
  ): Promise<RecordChange> {
    const collection = await unchanged(() => this.#collection.get());
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { head, verified, baseGone } = await unchanged(() => this.#candidate(collection, key, context));
      const current = head?.revision ?? 0;
      const live = head !== undefined && (await unchanged(() => this.#isLive(head)));
      // An unconditional delete of an absent key applies and changes nothing.
      const noop = isDelete && condition === undefined && !live;
      const { applies, next } = decideCondition(current, condition);
      if (noop || !applies) {
        // Answering without an insert needs the head confirmed: still there after its successor was looked up.
        if (!verified && !(await unchanged(() => this.#stillThere(collection, head as RecordDocument, context)))) {
          continue;
        }
        return noop ? { applied: true, revision: current } : { applied: false, revision: current };
      }
      const document = changeDocument(key, head, next, await unchanged(body));
      if (!(await this.#insert(collection, document))) continue;
      if (await this.#settle(collection, key, head, baseGone, document, context)) {
        this.#remember(document);
        return { applied: true, revision: next };
      }
      await unchanged(() => collection.deleteOne({ _id: document._id, change: document.change }));
    }
    throw new PersistErrorClass(`other writers changed the key ${MAX_ATTEMPTS} times in a row; nothing was changed`, {
      ...context,
      outcome: "not-applied",
    });
  }

  /**
   * After our change was inserted on `head`: whether it was kept (see `#wasKept`), with `head`,
   * superseded now, deleted once its own base is gone (so a change is never deleted while its base
   * remains, what `#head` relies on). `head` found still there after our insert means ours was its
   * first successor while it was the key's latest change: had another successor come and gone
   * before ours, `head` would have been deleted before it. When its base is gone that finding is
   * the deletion itself (`findOneAndDelete` returns what it deleted); otherwise (a longer chain
   * left by a crashed writer) a lookup, and the chain is collected by an `_id` range read. When
   * `head` is gone the documents above ours tell (`#wasKept`, an `_id` range read, rare).
   */
  async #settle(
    collection: Collection<RecordDocument>,
    key: RecordKey,
    head: RecordDocument | undefined,
    baseGone: boolean | undefined,
    document: RecordDocument,
    context: PersistErrorContext,
  ): Promise<boolean> {
    // A key written for the first time: nothing to collect, unless another writer got there before ours.
    if (head === undefined) return this.#wasKept(collection, key, document, context);
    const gone = baseGone ?? (await this.#baseGone(collection, key, head, context));
    if (gone) {
      const removed = await collection.findOneAndDelete({ _id: head._id });
      if (removed?.change === head.change) return true;
    } else {
      const still = await this.#lookup(collection, head._id, context);
      if (still?.change === head.change) {
        await this.#collectByRange(collection, key, document, context);
        return true;
      }
    }
    const kept = await this.#wasKept(collection, key, document, context);
    if (kept) await this.#collectByRange(collection, key, document, context);
    return kept;
  }

  // Whether the change `head` was built on is gone (false when that cannot be told from its ancestors).
  async #baseGone(
    collection: Collection<RecordDocument>,
    key: RecordKey,
    head: RecordDocument,
    context: PersistErrorContext,
  ): Promise<boolean> {
    const baseId = baseDocumentId(key, head);
    if (baseId === undefined) return true;
    if (baseId === null) return false;
    const base = await this.#lookup(collection, baseId, context);
    return base?.change !== head.ancestors[0]?.change;
  }

  // True when the insert landed; false when another writer's change holds that `_id`. A driver
  // that re-sent the insert after a lost reply finds its own document there.
  async #insert(collection: Collection<RecordDocument>, document: RecordDocument): Promise<boolean> {
    try {
      await collection.insertOne(document);
      return true;
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      const holder = await collection.findOne({ _id: document._id }, { projection: { change: 1 } });
      return holder?.change === document.change;
    }
  }

  /**
   * Whether the inserted change is (or was) the key's latest. Every document above it was either
   * built on it (it names it among its ancestors) or was there first (then ours was never the
   * latest and no reader could see it). Our document may be gone: a successor collected it, or,
   * on a server whose delete is a query and then a delete by `_id` (FerretDB), a delete meant for
   * the earlier holder of the same `_id` removed it; the ancestors above tell which.
   */
  async #wasKept(
    collection: Collection<RecordDocument>,
    key: RecordKey,
    document: RecordDocument,
    context: PersistErrorContext,
  ): Promise<boolean> {
    const range = { $gte: document._id, $lt: keyDocumentRange(key).$lt };
    const found = await collection.find({ _id: range }).sort({ _id: 1 }).limit(2).toArray();
    const [first, second] = found.map((each) => this.#checked(each, context));
    const own = first?._id === document._id ? first : undefined;
    const above = own === undefined ? first : second;
    if (above?.ancestors.some((ancestor) => ancestor.change === document.change)) return true;
    if (own?.change === document.change) return above === undefined;
    // Not built on ours, as far back as the ancestors above reach: ours was never seen.
    const oldest = above?.ancestors.at(-1);
    if (
      above !== undefined &&
      (above.ancestors.length < MAX_ANCESTORS || (oldest?.revision ?? 0) <= document.revision)
    ) {
      return false;
    }
    // Gone, and the documents above reach back too little to tell: built upon, or never seen.
    throw new PersistErrorClass("the change was inserted, but whether it was kept cannot be told", {
      ...context,
      outcome: "unknown",
    });
  }

  /**
   * Deletes the changes `document` supersedes, read by `_id` range: the chain of documents below it
   * that each descend from the next, oldest first, each by its `change` id, and only when the oldest
   * one's base is gone, so a document is never deleted while the one it was based on remains (what
   * `#head` and `#settle` rely on). Used when the two exact lookups after a change found more than
   * one document to collect (a crashed writer's leftovers) or could not tell. Failures are ignored.
   */
  async #collectByRange(
    collection: Collection<RecordDocument>,
    key: RecordKey,
    document: RecordDocument,
    context: PersistErrorContext,
  ): Promise<void> {
    try {
      const base = document.ancestors[0];
      if (base === undefined) return;
      const below = (await this.#window(collection, key, GARBAGE_WINDOW, context, document._id)).filter(
        (each) => each._id !== document._id,
      );
      if (below[0]?.change !== base.change) return;
      const chain = baseChain(below);
      if (chain.length === GARBAGE_WINDOW) return;
      await collection.bulkWrite(
        chain.reverse().map(({ _id, change }) => ({ deleteOne: { filter: { _id, change } } })),
        { ordered: true },
      );
    } catch {
      // Garbage only: nothing a reader sees depends on it.
    }
  }

  /**
   * The key's latest change (the document with the highest `_id`), confirmed, or `undefined` for a
   * key never written. From the remembered hint it takes exact `_id` lookups only (the one query
   * FerretDB's SQLite handler hands to SQL), else one `_id` range read. The successor of a change
   * that stored revision R is the document `_id` = key prefix # R: absent, and the change still
   * there when looked up after that, means it was the latest at that moment (a superseded change
   * is only deleted after its base is gone, so its successor cannot have come and gone while it
   * stays). A successor built on it, looked up while it still stood, was its first one, and the
   * walk goes on from there.
   */
  async #head(
    collection: Collection<RecordDocument>,
    key: RecordKey,
    context: PersistErrorContext,
  ): Promise<RecordDocument | undefined> {
    const prefix = keyDocumentPrefix(key);
    let hint = this.#hints.get(prefix);
    for (let step = 0; hint !== undefined && step < MAX_WALK; step++) {
      const successor = await this.#lookup(collection, recordDocumentId(key, hint.revision), context);
      const still = await this.#lookup(collection, hint._id, context);
      if (still?.change !== hint.change) break;
      if (successor === undefined) {
        this.#remember(still);
        return still;
      }
      if (successor.ancestors[0]?.change !== hint.change) break;
      hint = successor;
    }
    const [head] = await this.#window(collection, key, 1, context);
    if (head === undefined) this.#hints.delete(prefix);
    else this.#remember(head);
    return head;
  }

  /**
   * What a change is decided on: the remembered head when it is still there and has no successor,
   * both looked up at once, so not yet confirmed (the insert makes up for it, see `#settle`), with
   * whether its base is gone (looked up alongside); else the head `#head` confirms.
   */
  async #candidate(
    collection: Collection<RecordDocument>,
    key: RecordKey,
    context: PersistErrorContext,
  ): Promise<{ head: RecordDocument | undefined; verified: boolean; baseGone?: boolean }> {
    const hint = this.#hints.get(keyDocumentPrefix(key));
    if (hint !== undefined) {
      const baseId = baseDocumentId(key, hint);
      const [still, successor, base] = await Promise.all([
        this.#lookup(collection, hint._id, context),
        this.#lookup(collection, recordDocumentId(key, hint.revision), context),
        typeof baseId === "string" ? this.#lookup(collection, baseId, context) : undefined,
      ]);
      if (still?.change === hint.change && successor === undefined) {
        const baseGone = baseId === undefined || (baseId !== null && base?.change !== hint.ancestors[0]?.change);
        return { head: still, verified: false, baseGone };
      }
    }
    return { head: await this.#head(collection, key, context), verified: true };
  }

  // Whether `head`, a candidate whose successor was found absent, is still there: then it was the latest.
  async #stillThere(
    collection: Collection<RecordDocument>,
    head: RecordDocument,
    context: PersistErrorContext,
  ): Promise<boolean> {
    const still = await this.#lookup(collection, head._id, context);
    if (still?.change === head.change) return true;
    this.#hints.delete(keyDocumentPrefix(head));
    return false;
  }

  // The document with this exact `_id`, checked; a filter of `_id` alone, which FerretDB hands to SQL.
  async #lookup(
    collection: Collection<RecordDocument>,
    id: string,
    context: PersistErrorContext,
  ): Promise<RecordDocument | undefined> {
    const [found] = await collection.find({ _id: id }).limit(1).toArray();
    return found === undefined ? undefined : this.#checked(found, context);
  }

  #remember(document: RecordDocument): void {
    const prefix = keyDocumentPrefix(document);
    this.#hints.delete(prefix);
    this.#hints.set(prefix, document);
    if (this.#hints.size > MAX_HINTS) this.#hints.delete(this.#hints.keys().next().value as string);
  }

  // The key's newest documents (or those up to `_id` upTo), newest first, each checked.
  async #window(
    collection: Collection<RecordDocument>,
    key: RecordKey,
    limit: number,
    context: PersistErrorContext,
    upTo?: string,
  ): Promise<RecordDocument[]> {
    const range = keyDocumentRange(key);
    const ids = upTo === undefined ? range : { $gte: range.$gte, $lte: upTo };
    const found = await collection.find({ _id: ids }).sort({ _id: -1 }).limit(limit).toArray();
    return found.map((document) => this.#checked(document, context));
  }

  async #isLive(head: RecordDocument): Promise<boolean> {
    if (head.deleted === true) return false;
    if (head.expiresAt === undefined) return true;
    return head.expiresAt.getTime() > (await this.#clock.now());
  }

  #checked(document: RecordDocument, context: PersistErrorContext): RecordDocument {
    const problem = recordDocumentProblem(document as unknown as Record<string, unknown>);
    if (problem === undefined) return document;
    const location = `${this.databaseName}.${this.collectionName} document ${String(document._id)}`;
    throw new CorruptDataError(`${problem} (${location})`, context);
  }

  #writeManyError(error: unknown, index: number, count: number, context: PersistErrorContext): PersistError {
    const wrapped = this.wrapError(error, context);
    const applied = wrapped.outcome !== "not-applied";
    // "No entry was written" only when the failing one provably was not either.
    const written = index > 0 ? `entries 0 to ${index - 1} were written, ` : applied ? "" : "no entry was written, ";
    const failing = applied ? "may have been written" : "was not written";
    const rest = index + 1 < count ? `; entries ${index + 1} to ${count - 1} were not sent` : "";
    const message = `entry ${index} failed (${errorMessage(error)}): ${written}entry ${index} ${failing}${rest}`;
    const outcome = index === 0 ? wrapped.outcome : "unknown";
    const ErrorClass = wrapped.constructor as new (message: string, context: PersistErrorContext) => PersistError;
    return new ErrorClass(message, { ...context, outcome, cause: wrapped.cause ?? error });
  }
}

function changeDocument(
  key: RecordKey,
  head: RecordDocument | undefined,
  revision: number,
  body: ChangeBody,
): RecordDocument {
  const base = head?.revision ?? 0;
  return {
    _id: recordDocumentId(key, base),
    v: DOCUMENT_FORMAT,
    namespace: key.namespace,
    parts: [...key.parts],
    base,
    revision,
    change: randomBytes(12).toString("hex"),
    ancestors:
      head === undefined
        ? []
        : [{ change: head.change, revision: head.revision }, ...head.ancestors].slice(0, MAX_ANCESTORS),
    ...body,
  };
}

/**
 * The `_id` of the change `head` was built on: `undefined` when `head` is a key's first change
 * (base 0), `null` when its ancestors do not tell. The base's own base is the second ancestor's
 * revision, or 0 when the first ancestor is the key's first change (fewer than MAX_ANCESTORS
 * ancestors: the list reaches back to the first change).
 */
function baseDocumentId(key: RecordKey, head: RecordDocument): string | null | undefined {
  if (head.base === 0) return undefined;
  const [base, baseOfBase] = head.ancestors;
  if (base === undefined || base.revision !== head.base) return null;
  if (baseOfBase !== undefined) return recordDocumentId(key, baseOfBase.revision);
  return head.ancestors.length < MAX_ANCESTORS ? recordDocumentId(key, 0) : null;
}

// The head and the documents it descends from, newest first, as far as `window` (newest first) shows.
function baseChain(window: RecordDocument[]): RecordDocument[] {
  const chain: RecordDocument[] = [];
  for (const document of window) {
    const newest = chain.at(-1);
    if (newest !== undefined && document.change !== newest.ancestors[0]?.change) break;
    chain.push(document);
  }
  return chain;
}

// Runs a step whose failure leaves the store as it was: the error says so.
async function unchanged<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof PersistErrorClass) throw error;
    throw new UnchangedError(error);
  }
}

// An unset environment variable passes undefined: refused here, not at the first read.
function assertConnection(connection: unknown): asserts connection is string | MongoClient {
  if (typeof connection === "string" && /^mongodb(\+srv)?:\/\//i.test(connection)) return;
  if (typeof connection === "object" && connection !== null && typeof (connection as MongoClient).db === "function")
    return;
  const given =
    typeof connection === "string" ? "a string that is not a mongodb:// or mongodb+srv:// URL" : String(connection);
  throw new InvalidOptionError(
    `the connection must be a mongodb:// or mongodb+srv:// URL or a MongoClient, got ${given}`,
    {
      backend: BACKEND,
      operation: "create",
    },
  );
}

function createClient(url: string, options: MongoRecordStoreOptions, secrets: readonly string[]): MongoClient {
  const timeouts = {
    serverSelectionTimeoutMS: wholeNumberOption(BACKEND, "serverSelectionTimeoutMS", options.serverSelectionTimeoutMS, {
      default: 5_000,
      min: 1,
    }),
    connectTimeoutMS: wholeNumberOption(BACKEND, "connectTimeoutMS", options.connectTimeoutMS, {
      default: 5_000,
      min: 1,
    }),
    socketTimeoutMS: wholeNumberOption(BACKEND, "socketTimeoutMS", options.socketTimeoutMS, {
      default: 30_000,
      min: 1,
    }),
  };
  try {
    return new MongoClient(url, { appName: "persist-kit", ...options.clientOptions, ...timeouts });
  } catch (error) {
    // The URL is not shown: it may hold a password the driver could not read as one.
    throw new InvalidOptionError(`the URL is not one the driver takes: ${errorMessage(error)}`, {
      backend: BACKEND,
      operation: "create",
      cause: error,
      secrets,
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
