import {
  errorMessage,
  InvalidOptionError,
  type PersistError,
  type PersistErrorContext,
  type PersistOperation,
} from "../errors.js";
import { assertRecordCondition, assertRecordKey, namespaceProblem, recordKeyId } from "../records/record-key.js";
import type {
  RecordChange,
  RecordCondition,
  RecordDeleteOptions,
  RecordEntry,
  RecordKey,
  RecordListOptions,
  RecordPage,
  RecordRead,
  RecordStore,
  RecordStoreCapabilities,
  RecordWriteOptions,
} from "../records/record-store.js";
import { assertTtl } from "../ttl.js";
import { KeyedQueue } from "./keyed-queue.js";
import { Lifecycle } from "./lifecycle.js";

const DEFAULT_PAGE_SIZE = 1_000;

/** Methods of a {@link BaseRecordStore} for input core has already checked; shared across copies of core. */
export const CHECKED_READ: unique symbol = Symbol.for("persist-kit.record-store.checked-read") as never;
export const CHECKED_WRITE: unique symbol = Symbol.for("persist-kit.record-store.checked-write") as never;
export const CHECKED_DELETE: unique symbol = Symbol.for("persist-kit.record-store.checked-delete") as never;
const MAX_PAGE_SIZE = 10_000;

/** A list request as a backend receives it: every field checked and filled in. */
export interface ListRequest {
  readonly prefix: readonly string[];
  readonly cursor: string | undefined;
  readonly limit: number;
}

/**
 * The part of a record store every backend shares, so each backend keeps only what is its own:
 * keys, conditions, TTLs and list options are checked before any I/O (an invalid one rejects with
 * a typed error, nothing sent); operations run only while the store is open and `close()` waits
 * for them; every failure is wrapped with the backend, operation, key and outcome by the backend's
 * {@link BaseRecordStore.wrapError}.
 *
 * A backend implements the protected `*Record(s)` methods, `pingStore`, `closeStore` and
 * `wrapError`; they receive checked input and the error context of the operation.
 */
export abstract class BaseRecordStore implements RecordStore {
  abstract readonly name: string;
  abstract readonly capabilities: RecordStoreCapabilities;
  /** Open/closed state and the count of running operations. */
  protected readonly lifecycle = new Lifecycle();
  /**
   * `"queue"` (the default): operations on one key reach the backend one at a time, in call order,
   * through core's keyed queue. `"native"`: the driver already keeps their order (one connection
   * that answers in order), so no queue is needed.
   */
  protected readonly keyOrder: "queue" | "native" = "queue";
  readonly #queue = new KeyedQueue();

  async read(key: RecordKey): Promise<RecordRead> {
    return this[CHECKED_READ](key, this.keyContext("read", key));
  }

  /**
   * The read of a key core has already checked (the signal layer), with its error context: the
   * same path as `read` without checking the same input twice.
   * @internal
   */
  [CHECKED_READ](key: RecordKey, context: PersistErrorContext): Promise<RecordRead> {
    return this.lifecycle.run(context, () =>
      this.#inOrder(key, () => this.readRecord(key, context)).catch(this.#wrapper(context)),
    );
  }

  /**
   * The write of a key and JSON text core has already checked (the signal layer serializes a
   * validated row with `JSON.stringify`, which always gives one well-formed JSON text).
   * @internal
   */
  [CHECKED_WRITE](
    key: RecordKey,
    json: string,
    ttlMs: number | undefined,
    context: PersistErrorContext,
    condition?: RecordCondition,
  ): Promise<RecordChange> {
    return this.lifecycle.run(context, () =>
      this.#inOrder(key, () => this.writeRecord(key, json, { condition, ttlMs }, context)).catch(
        this.#wrapper(context),
      ),
    );
  }

  /** The delete of a key core has already checked, under a condition core has checked too. @internal */
  [CHECKED_DELETE](key: RecordKey, context: PersistErrorContext, condition?: RecordCondition): Promise<RecordChange> {
    return this.lifecycle.run(context, () =>
      this.#inOrder(key, () => this.deleteRecord(key, condition, context)).catch(this.#wrapper(context)),
    );
  }

  async write(key: RecordKey, json: string, options: RecordWriteOptions = {}): Promise<RecordChange> {
    const context = this.keyContext("write", key);
    const ttlMs = assertTtl(options.ttlMs, this.name);
    assertRecordCondition(options.condition, context);
    assertJsonText(json, context);
    if (ttlMs !== undefined && !this.capabilities.ttl) {
      throw new InvalidOptionError("this backend has no TTL (ttlMs)", context);
    }
    return this.lifecycle.run(context, () =>
      this.#inOrder(key, () => this.writeRecord(key, json, { condition: options.condition, ttlMs }, context)).catch(
        this.#wrapper(context),
      ),
    );
  }

  async delete(key: RecordKey, options: RecordDeleteOptions = {}): Promise<RecordChange> {
    const context = this.keyContext("delete", key);
    assertRecordCondition(options.condition, context);
    return this.lifecycle.run(context, () =>
      this.#inOrder(key, () => this.deleteRecord(key, options.condition, context)).catch(this.#wrapper(context)),
    );
  }

  async list(namespace: string, options: RecordListOptions = {}): Promise<RecordPage> {
    const context: PersistErrorContext = { backend: this.name, operation: "list" };
    const request = this.#listRequest(namespace, options, context);
    return this.lifecycle.run(context, () =>
      this.listRecords(namespace, request, context).catch(this.#wrapper(context)),
    );
  }

  async writeMany(entries: readonly RecordEntry[], options: { readonly ttlMs?: number } = {}): Promise<void> {
    const context: PersistErrorContext = { backend: this.name, operation: "writeMany" };
    if (this.capabilities.writeMany === "none") {
      throw new InvalidOptionError("this backend has no writeMany", context);
    }
    const ttlMs = assertTtl(options.ttlMs, this.name);
    for (const entry of entries) {
      assertRecordKey(entry?.key, context);
      assertJsonText(entry.json, this.keyContext("writeMany", entry.key));
    }
    if (entries.length === 0) {
      this.lifecycle.assertOpen(context);
      return;
    }
    return this.lifecycle.run(context, () =>
      (this.keyOrder === "native"
        ? this.writeManyRecords(entries, ttlMs, context)
        : this.#queue.runAll(
            entries.map((entry) => recordKeyId(entry.key)),
            () => this.writeManyRecords(entries, ttlMs, context),
          )
      ).catch(this.#wrapper(context)),
    );
  }

  async ping(): Promise<void> {
    const context: PersistErrorContext = { backend: this.name, operation: "ping" };
    return this.lifecycle.run(context, () => this.pingStore(context).catch(this.#wrapper(context)));
  }

  /** Waits for running operations, then releases what the store opened. Later calls reject with `BackendClosedError`. */
  close(): Promise<void> {
    const context: PersistErrorContext = { backend: this.name, operation: "close" };
    return this.lifecycle.close(() => this.closeStore().catch(this.#wrapper(context)));
  }

  /** The error context of an operation on `key` (checked first): signal keys name their strategy and symbol. */
  protected keyContext(operation: PersistOperation, key: RecordKey): PersistErrorContext {
    const context = recordContext(this.name, operation, key);
    assertRecordKey(key, context);
    return context;
  }

  protected abstract readRecord(key: RecordKey, context: PersistErrorContext): Promise<RecordRead>;
  protected abstract writeRecord(
    key: RecordKey,
    json: string,
    options: { condition: RecordCondition | undefined; ttlMs: number | undefined },
    context: PersistErrorContext,
  ): Promise<RecordChange>;
  protected abstract deleteRecord(
    key: RecordKey,
    condition: RecordCondition | undefined,
    context: PersistErrorContext,
  ): Promise<RecordChange>;
  protected abstract listRecords(
    namespace: string,
    request: ListRequest,
    context: PersistErrorContext,
  ): Promise<RecordPage>;
  /** Writes the entries as `capabilities.writeMany` declares. Only called when it is not `"none"`. */
  protected writeManyRecords(
    _entries: readonly RecordEntry[],
    _ttlMs: number | undefined,
    context: PersistErrorContext,
  ): Promise<void> {
    return Promise.reject(new InvalidOptionError("this backend has no writeMany", context));
  }
  protected abstract pingStore(context: PersistErrorContext): Promise<void>;
  protected abstract closeStore(): Promise<void>;
  /** Wraps a failure of this backend's driver, with `wrapDriverError` and the backend's rules. */
  protected abstract wrapError(error: unknown, context: PersistErrorContext): PersistError;

  #inOrder<T>(key: RecordKey, operation: () => Promise<T>): Promise<T> {
    return this.keyOrder === "native" ? operation() : this.#queue.run(recordKeyId(key), operation);
  }

  #wrapper(context: PersistErrorContext): (error: unknown) => never {
    return (error) => {
      throw this.wrapError(error, context);
    };
  }

  #listRequest(namespace: string, options: RecordListOptions, context: PersistErrorContext): ListRequest {
    const problem = namespaceProblem(namespace);
    if (problem !== undefined) throw new InvalidOptionError(problem, context);
    const prefix = options.prefix ?? [];
    if (prefix.length > 0) assertRecordKey({ namespace, parts: prefix }, context);
    const limit = options.limit ?? DEFAULT_PAGE_SIZE;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
      throw new InvalidOptionError(`limit must be a whole number from 1 to ${MAX_PAGE_SIZE}, got ${limit}`, context);
    }
    if (options.cursor !== undefined && typeof options.cursor !== "string") {
      throw new InvalidOptionError("cursor must be the cursor of an earlier page", context);
    }
    return { prefix, cursor: options.cursor, limit };
  }
}

/**
 * Throws {@link InvalidOptionError} unless `json` is one JSON text, well-formed Unicode: what goes
 * into a store must come back out as the same value, and a store that embeds it in an envelope
 * must never see text that changes the envelope's meaning.
 */
export function assertJsonText(json: unknown, context: PersistErrorContext): asserts json is string {
  if (typeof json !== "string")
    throw new InvalidOptionError(`the value must be JSON text, got ${typeof json}`, context);
  // A lone surrogate has no UTF-8 form: a store would keep U+FFFD in its place.
  if (!json.isWellFormed())
    throw new InvalidOptionError("the value must be well-formed Unicode (no lone surrogates)", context);
  try {
    JSON.parse(json);
  } catch (error) {
    throw new InvalidOptionError(`the value is not JSON text (${errorMessage(error)})`, { ...context, cause: error });
  }
}

/** The error context of an operation on a record key; a signal key names its strategy and symbol. */
export function recordContext(backend: string, operation: PersistOperation, key: RecordKey): PersistErrorContext {
  const parts = Array.isArray(key?.parts) ? key.parts : [];
  if (key?.namespace === "signal" && parts.length === 2) {
    return { backend, operation, strategyName: parts[0], symbol: parts[1] };
  }
  return { backend, operation, record: { namespace: String(key?.namespace), parts } };
}
