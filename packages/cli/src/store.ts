import { DOMAINS, domainNamespace } from "@persist-kit/backtest-kit";
import {
  type ClosablePersist,
  createPersist,
  LEASE_NAMESPACE,
  type ListedRecord,
  type RecordKey,
  type RecordStore,
  SIGNAL_NAMESPACE,
} from "@persist-kit/core";
import * as persistFile from "@persist-kit/persist-file";
import * as persistMongo from "@persist-kit/persist-mongo";
import * as persistPostgres from "@persist-kit/persist-postgres";
import * as persistRedis from "@persist-kit/persist-redis";
import { UsageError } from "./io.js";
import { shownUrl } from "./url.js";

/** A store opened from a URL: the backend `createPersist` made, and its record store. */
export interface OpenedStore {
  readonly persist: ClosablePersist & { describeDurability?(): Promise<unknown> };
  readonly records: RecordStore;
  readonly url: string;
}

const BACKENDS = [persistFile, persistRedis, persistPostgres, persistMongo];

/** Opens the store at `url` with every bundled backend; nothing is read or written yet. */
export async function openStore(url: string): Promise<OpenedStore> {
  const persist = await createPersist(url, { backends: BACKENDS });
  const records = (persist as { records?: RecordStore }).records;
  if (records === undefined) {
    await persist.close();
    throw new UsageError(`${shownUrl(url)} opens a backend without a record store`);
  }
  return { persist, records, url };
}

/**
 * The namespaces a copy carries: signals and every backtest-kit domain. Leases are left out:
 * they belong to running processes, expire by themselves, and are never copied.
 */
export const COPIED_NAMESPACES: readonly string[] = [SIGNAL_NAMESPACE, ...DOMAINS.map(domainNamespace)];

/** Every live key of `namespace` (under `prefix`), page by page. */
export async function* listAll(
  records: RecordStore,
  namespace: string,
  prefix: readonly string[] = [],
): AsyncGenerator<ListedRecord> {
  let cursor: string | undefined;
  do {
    const page = await records.list(namespace, { prefix, ...(cursor === undefined ? {} : { cursor }) });
    yield* page.records;
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/** Who holds a signal key: the lease record's holder, or `null` when no live owner holds it. */
export interface Owner {
  readonly host: string;
  readonly pid: number;
  readonly since: string;
}

/** The live owner of the signal key `[strategyName, symbol]`, read from its lease record. */
export async function ownerOf(records: RecordStore, strategyName: string, symbol: string): Promise<Owner | null> {
  return ownerIn(records, { namespace: LEASE_NAMESPACE, parts: [strategyName, symbol] });
}

export async function ownerIn(records: RecordStore, key: RecordKey): Promise<Owner | null> {
  const lease = await records.read(key);
  if (!lease.found) return null;
  const value = JSON.parse(lease.json) as Partial<Owner>;
  return { host: String(value.host), pid: Number(value.pid), since: String(value.since) };
}

/** Every live lease of the store: the processes that own keys now. */
export async function liveOwners(records: RecordStore): Promise<{ parts: readonly string[]; owner: Owner }[]> {
  const found: { parts: readonly string[]; owner: Owner }[] = [];
  for await (const { parts } of listAll(records, LEASE_NAMESPACE)) {
    const owner = await ownerIn(records, { namespace: LEASE_NAMESPACE, parts });
    if (owner !== null) found.push({ parts, owner });
  }
  return found;
}

/**
 * Runs `task` over `items` with at most `limit` at a time; resolves with the results in order.
 * After a task fails no other starts; the first failure rejects once the running ones have ended.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && failure === undefined) {
      const index = next++;
      try {
        results[index] = await task(items[index] as T);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
  return results;
}

/** Opens, runs `body`, and closes the store whatever happens. */
export async function withStore<T>(url: string, body: (store: OpenedStore) => Promise<T>): Promise<T> {
  const store = await openStore(url);
  try {
    return await body(store);
  } finally {
    await store.persist.close();
  }
}
