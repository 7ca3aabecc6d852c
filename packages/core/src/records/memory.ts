import { BaseRecordStore, type ListRequest } from "../backend-kit/base-record-store.js";
import { wrapDriverError } from "../backend-kit/driver-errors.js";
import type { PersistError, PersistErrorContext } from "../errors.js";
import type { PersistOptions } from "../signals/persist-base.js";
import { recordGroupId, recordKeyId } from "./record-key.js";
import {
  decideCondition,
  type RecordChange,
  type RecordCondition,
  type RecordEntry,
  type RecordKey,
  type RecordPage,
  type RecordRead,
  type RecordStoreCapabilities,
} from "./record-store.js";
import { RecordSignalStore } from "./signal-store.js";

const BACKEND = "memory";

interface MemoryRecord {
  namespace: string;
  parts: readonly string[];
  json: string;
  revision: number;
  expiresAt: number | undefined;
}

/**
 * Records in this process's memory, with revisions and conditions like every durable backend.
 * For backtests and tests: nothing survives the process.
 */
export class MemoryRecordStore extends BaseRecordStore {
  readonly name = BACKEND;
  readonly capabilities: RecordStoreCapabilities = {
    writeMany: "atomic",
    ttl: true,
    ttlResetsRevision: false,
    durable: false,
  };
  // Every operation runs to completion in one turn of the event loop: call order is kept as it is.
  protected override readonly keyOrder = "native";
  readonly #records = new Map<string, MemoryRecord>();
  // The revision of each group's deleted keys: a delete raises it as it removes the record.
  readonly #floors = new Map<string, number>();

  protected async readRecord(key: RecordKey): Promise<RecordRead> {
    const stored = this.#records.get(recordKeyId(key));
    if (stored === undefined) return { found: false, revision: this.#floor(key) };
    if (isExpired(stored)) return { found: false, revision: stored.revision };
    return { found: true, json: stored.json, revision: stored.revision };
  }

  protected async writeRecord(
    key: RecordKey,
    json: string,
    options: { condition: RecordCondition | undefined; ttlMs: number | undefined },
  ): Promise<RecordChange> {
    const current = this.#revision(key);
    const { applies, next } = decideCondition(current, options.condition);
    if (!applies) return { applied: false, revision: current };
    this.#store(key, json, next, options.ttlMs);
    return { applied: true, revision: next };
  }

  protected async deleteRecord(key: RecordKey, condition: RecordCondition | undefined): Promise<RecordChange> {
    const id = recordKeyId(key);
    const stored = this.#records.get(id);
    const current = this.#revision(key);
    const live = stored !== undefined && !isExpired(stored);
    if (!live && condition === undefined) return { applied: true, revision: current };
    const { applies, next } = decideCondition(current, condition);
    if (!applies) return { applied: false, revision: current };
    this.#records.delete(id);
    // Raised, never lowered: another key of the group may have raised it further already.
    const group = recordGroupId(key);
    const floor = Math.max(this.#floors.get(group) ?? 0, next);
    this.#floors.set(group, floor);
    return { applied: true, revision: floor };
  }

  protected async listRecords(namespace: string, request: ListRequest): Promise<RecordPage> {
    const live = [...this.#records.values()]
      .filter(
        (stored) => stored.namespace === namespace && !isExpired(stored) && startsWith(stored.parts, request.prefix),
      )
      .map((stored) => ({ id: JSON.stringify(stored.parts), parts: stored.parts, revision: stored.revision }))
      .filter((entry) => request.cursor === undefined || entry.id > request.cursor)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const page = live.slice(0, request.limit);
    const last = page.at(-1);
    return {
      records: page.map(({ parts, revision }) => ({ parts: [...parts], revision })),
      cursor: live.length > request.limit && last !== undefined ? last.id : undefined,
    };
  }

  protected override async writeManyRecords(entries: readonly RecordEntry[], ttlMs: number | undefined): Promise<void> {
    for (const { key, json } of entries) this.#store(key, json, this.#revision(key) + 1, ttlMs);
  }

  protected async pingStore(): Promise<void> {}

  protected async closeStore(): Promise<void> {
    this.#records.clear();
    this.#floors.clear();
  }

  protected wrapError(error: unknown, context: PersistErrorContext): PersistError {
    return wrapDriverError(error, context, { isUnavailable: () => false });
  }

  #revision(key: RecordKey): number {
    const stored = this.#records.get(recordKeyId(key));
    return stored === undefined ? this.#floor(key) : stored.revision;
  }

  #floor(key: RecordKey): number {
    return this.#floors.get(recordGroupId(key)) ?? 0;
  }

  #store(key: RecordKey, json: string, revision: number, ttlMs: number | undefined): void {
    this.#records.set(recordKeyId(key), {
      namespace: key.namespace,
      parts: [...key.parts],
      json,
      revision,
      expiresAt: ttlMs === undefined ? undefined : Date.now() + ttlMs,
    });
  }
}

function isExpired(stored: MemoryRecord): boolean {
  return stored.expiresAt !== undefined && stored.expiresAt <= Date.now();
}

function startsWith(parts: readonly string[], prefix: readonly string[]): boolean {
  return prefix.every((part, index) => parts[index] === part);
}

/**
 * Keeps signals in this process's memory, serialized as JSON like every durable backend, so a row
 * read back is a copy with the same numbers. For backtests and tests: nothing survives the process.
 *
 * @example
 * const persist = new PersistMemory();
 * await persist.writeSignalData("BTC/USDT", "momentum", row);
 */
export class PersistMemory extends RecordSignalStore<MemoryRecordStore> {
  constructor(options: PersistOptions = {}) {
    super(new MemoryRecordStore(), options);
  }
}
