import {
  BackendClosedError,
  BackendUnavailableError,
  type Lease,
  OWNERSHIP_GAP,
  OwnershipLostError,
  type PersistError,
  type PersistErrorContext,
  type PersistOperation,
  type RecordKey,
  type RecordStore,
} from "@persist-kit/core";
import { decodeValue, encodeValue } from "./codec.js";
import type { ContextLease, LeaseKeeper } from "./ownership.js";

// Attempts to raise a record by the ownership gap before giving up on a store that keeps changing.
const MAX_TAKE_ATTEMPTS = 8;

/** What every class of one installation shares: the store, and whether it was closed. */
export class Bridge {
  readonly records: RecordStore;
  /** With `exclusive`: the leases of the crash-critical records. */
  readonly leases: LeaseKeeper | undefined;
  #closed = false;

  constructor(records: RecordStore, leases?: LeaseKeeper) {
    this.records = records;
    this.leases = leases;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** From now on every call of every class made with this bridge rejects with `BackendClosedError`. */
  markClosed(): void {
    this.#closed = true;
  }

  context(operation: PersistOperation, key: RecordKey): PersistErrorContext {
    return { backend: this.records.name, operation, record: { namespace: key.namespace, parts: key.parts } };
  }

  assertOpen(context: PersistErrorContext): void {
    if (this.#closed) {
      throw new BackendClosedError(
        "the persist-kit classes were closed (installPersistKit's close()); nothing was sent",
        context,
      );
    }
  }

  /** The key parts of every record under `prefix` in `namespace`, page by page. */
  async *list(namespace: string, prefix: readonly string[]): AsyncGenerator<readonly string[]> {
    this.assertOpen({ backend: this.records.name, operation: "list", record: { namespace, parts: prefix } });
    let cursor: string | undefined;
    do {
      const page = await this.records.list(namespace, { prefix, ...(cursor === undefined ? {} : { cursor }) });
      for (const record of page.records) yield record.parts;
      cursor = page.cursor;
    } while (cursor !== undefined);
  }
}

/**
 * One record of a domain: its value read, written and removed through the bridge's store, one
 * call at a time in call order. A fenced slot (the crash-critical domains) writes and removes
 * only above the revision it last saw (`{ below: seen + 1 }`): a change by another writer since
 * then (a second process on the same position) is refused with `OwnershipLostError`, nothing
 * written, and stays refused, and a change of this slot that timed out can never land after a
 * later one of this slot. The revision is learnt on the first call.
 *
 * With `exclusive`, a fenced slot needs its instance's lease (`claim`, taken on the first call of
 * any of the instance's records; another live owner: `OwnershipError`, nothing done) and on its
 * own first call raises the record's revision by `OWNERSHIP_GAP`, so nothing a previous owner
 * sent can land after it; a change is sent only while the lease is valid, and a lost lease makes
 * every later call reject with `OwnershipLostError`.
 */
export class RecordSlot {
  readonly #bridge: Bridge;
  readonly #key: RecordKey;
  readonly #fenced: boolean;
  #seen: number | undefined;
  #lost: PersistError | undefined;
  readonly #claim: ContextLease | undefined;
  #lease: Lease | undefined;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(bridge: Bridge, key: RecordKey, fenced: boolean, claim?: ContextLease) {
    this.#bridge = bridge;
    this.#key = key;
    this.#fenced = fenced;
    this.#claim = fenced ? claim : undefined;
  }

  /** The stored value, or `undefined` when there is none. */
  read(): Promise<unknown> {
    return this.#inOrder("read", async (context) => {
      await this.#own(context);
      const found = await this.#bridge.records.read(this.#key);
      this.#seen ??= found.revision;
      return found.found ? decodeValue(found.json, context) : undefined;
    });
  }

  write(value: unknown): Promise<void> {
    return this.#inOrder("write", async (context) => {
      const json = encodeValue(value, context);
      if (!this.#fenced) {
        await this.#bridge.records.write(this.#key, json);
        return;
      }
      await this.#fencedChange(context, (below) =>
        this.#bridge.records.write(this.#key, json, { condition: { below } }),
      );
    });
  }

  /** Writes `value` unless the record is there; true when it was written. */
  writeIfAbsent(value: unknown): Promise<boolean> {
    return this.#inOrder("write", async (context) => {
      const json = encodeValue(value, context);
      const first = await this.#bridge.records.write(this.#key, json, { condition: { revision: 0 } });
      if (first.applied) return true;
      // Not at revision 0: there, or deleted once. Written only when absent now.
      const found = await this.#bridge.records.read(this.#key);
      if (found.found) return false;
      const change = await this.#bridge.records.write(this.#key, json, { condition: { revision: found.revision } });
      return change.applied;
    });
  }

  remove(): Promise<void> {
    return this.#inOrder("delete", async (context) => {
      if (!this.#fenced) {
        await this.#bridge.records.delete(this.#key);
        return;
      }
      await this.#fencedChange(context, (below) => this.#bridge.records.delete(this.#key, { condition: { below } }));
    });
  }

  async #fencedChange(
    context: PersistErrorContext,
    change: (below: number) => Promise<{ applied: boolean; revision: number }>,
  ): Promise<void> {
    if (this.#lost !== undefined) throw this.#lost;
    await this.#own(context);
    this.#seen ??= (await this.#bridge.records.read(this.#key)).revision;
    const fence = this.#seen + 1;
    const lease = this.#lease;
    if (lease !== undefined) this.#assertLease(lease, context, "not-applied");
    let result: { applied: boolean; revision: number };
    try {
      result = await change(fence);
    } catch (error) {
      // It may land later: the next change fences above it.
      if ((error as PersistError | undefined)?.outcome !== "not-applied") this.#seen = fence;
      throw error;
    }
    if (result.applied) {
      this.#seen = result.revision;
      if (lease !== undefined) this.#assertLease(lease, context, "unknown");
      return;
    }
    if (lease !== undefined && this.#claim !== undefined && !(await this.#claim.current(lease, context))) {
      lease.lost = true;
      this.#lost = new OwnershipLostError("another owner took the record; nothing was written", {
        ...context,
        outcome: "not-applied",
      });
      throw this.#lost;
    }
    this.#lost = new OwnershipLostError(
      `another writer changed the record since this instance saw revision ${this.#seen} (it is at ${result.revision}): ` +
        "two processes manage it; nothing was written, and this instance writes no more (register the classes again, or restart, to take the stored value)",
      { ...context, outcome: "not-applied" },
    );
    throw this.#lost;
  }

  // With `exclusive`: the instance's lease, and this record raised above its previous owner once.
  async #own(context: PersistErrorContext): Promise<void> {
    const claim = this.#claim;
    if (claim === undefined) return;
    if (this.#lease !== undefined) {
      this.#assertLease(this.#lease, context, "not-applied");
      return;
    }
    const lease = await claim.get(context);
    this.#assertLease(lease, context, "not-applied");
    for (let attempt = 0; attempt < MAX_TAKE_ATTEMPTS; attempt++) {
      const stored = await this.#bridge.records.read(this.#key);
      const fence = Math.max(stored.revision, this.#seen ?? 0) + OWNERSHIP_GAP;
      const change = stored.found
        ? await this.#bridge.records.write(this.#key, stored.json, { condition: { below: fence } })
        : await this.#bridge.records.delete(this.#key, { condition: { below: fence } });
      if (!change.applied) continue;
      this.#seen = change.revision;
      this.#assertLease(lease, context, "unknown");
      // Only now is the record this instance's: the previous owner's changes can no longer land.
      this.#lease = lease;
      return;
    }
    throw new BackendUnavailableError(
      `the record changed under ${MAX_TAKE_ATTEMPTS} attempts to take it; another writer keeps changing it`,
      { ...context, outcome: "unknown" },
    );
  }

  #assertLease(lease: Lease, context: PersistErrorContext, outcome: "not-applied" | "unknown"): void {
    if (this.#claim?.keeper.valid(lease)) return;
    lease.lost = true;
    this.#lost = this.#leaseLost(
      context,
      outcome,
      outcome === "unknown"
        ? "the change was acknowledged after the lease ran out; another owner may hold the record"
        : "the lease ran out (the process was paused, or the store did not answer renewals); nothing was written",
    );
    throw this.#lost;
  }

  #leaseLost(context: PersistErrorContext, outcome: "not-applied" | "unknown", message: string): OwnershipLostError {
    return new OwnershipLostError(`${message}; register the classes again (or restart) to take it again`, {
      ...context,
      outcome,
    });
  }

  #inOrder<T>(operation: PersistOperation, body: (context: PersistErrorContext) => Promise<T>): Promise<T> {
    const context = this.#bridge.context(operation, this.#key);
    const run = async (): Promise<T> => {
      this.#bridge.assertOpen(context);
      return body(context);
    };
    const result = this.#tail.then(run, run);
    this.#tail = result.catch(() => {});
    return result;
  }
}
