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
  type RecordRead,
  type RecordStore,
} from "@persist-kit/core";
import { decodeValue, encodeValue } from "./codec.js";
import { ContextLease, type LeaseKeeper } from "./ownership.js";

// Attempts at one change (or one takeover) while the record's group keeps moving under it.
const MAX_ATTEMPTS = 8;

/** What every class of one installation shares: the store, its leases, whether it was closed. */
export class Bridge {
  readonly records: RecordStore;
  /** With `exclusive`: the leases of the crash-critical records. */
  readonly leases: LeaseKeeper | undefined;
  readonly #claims = new Map<string, { claim: ContextLease; holders: number }>();
  readonly #running = new Set<Promise<unknown>>();
  #closed = false;

  constructor(records: RecordStore, leases?: LeaseKeeper) {
    this.records = records;
    this.leases = leases;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Refuses every later call (`BackendClosedError`) and resolves once the calls already running
   * have settled (so that no change is acknowledged after the leases are given back), or after
   * `timeoutMs` with the number still running.
   */
  async close(timeoutMs: number): Promise<number> {
    this.#closed = true;
    const deadline = performance.now() + timeoutMs;
    // A call's list may still add pages while it winds down: wait for what is running each time.
    while (this.#running.size > 0) {
      const left = deadline - performance.now();
      const settled = Promise.allSettled([...this.#running]).then(() => {});
      if (left <= 0 || !(await settlesWithin(settled, left))) break;
    }
    return this.#running.size;
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

  /** Counts `call` as running until it settles (see {@link close}). */
  track<T>(call: Promise<T>): Promise<T> {
    this.#running.add(call);
    const forget = () => {
      this.#running.delete(call);
    };
    call.then(forget, forget);
    return call;
  }

  /**
   * With `exclusive`: the one lease of a context in this installation, shared by every instance
   * the framework makes for it; given back when the last of them is disposed.
   */
  claim(key: RecordKey): { claim: ContextLease; drop(): void } | undefined {
    const leases = this.leases;
    if (leases === undefined) return undefined;
    const id = JSON.stringify([key.namespace, ...key.parts]);
    let entry = this.#claims.get(id);
    if (entry === undefined) {
      entry = { claim: new ContextLease(leases, key), holders: 0 };
      this.#claims.set(id, entry);
    }
    entry.holders++;
    const held = entry;
    let dropped = false;
    return {
      claim: held.claim,
      drop: () => {
        if (dropped) return;
        dropped = true;
        held.holders--;
        if (held.holders > 0) return;
        this.#claims.delete(id);
        void held.claim.release();
      },
    };
  }

  /** The key parts of every record under `prefix` in `namespace`, page by page. */
  async *list(namespace: string, prefix: readonly string[]): AsyncGenerator<readonly string[]> {
    this.assertOpen({ backend: this.records.name, operation: "list", record: { namespace, parts: prefix } });
    let cursor: string | undefined;
    do {
      const page = await this.track(
        this.records.list(namespace, { prefix, ...(cursor === undefined ? {} : { cursor }) }),
      );
      for (const record of page.records) yield record.parts;
      cursor = page.cursor;
    } while (cursor !== undefined);
  }
}

// Whether `promise` settled within `ms` (a rejection is thrown).
export async function settlesWithin(promise: Promise<void> | undefined, ms: number): Promise<boolean> {
  if (promise === undefined) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a slot believes is stored: the revision, and the JSON text (`undefined`: absent). */
interface Belief {
  revision: number;
  json: string | undefined;
}

function beliefOf(read: RecordRead): Belief {
  return { revision: read.revision, json: read.found ? read.json : undefined };
}

/**
 * One record of a domain: its value read, written and removed through the bridge's store, one
 * call at a time in call order. A fenced slot (the crash-critical domains) changes the record only
 * above the revision it believes is stored (`{ below: revision + 1 }`): a change by another writer
 * since then (a second process on the same position) is refused with `OwnershipLostError`,
 * nothing written, and stays refused. A refusal that changed nothing the slot knew is no
 * conflict: an absent record whose revision rose because another record of its group was deleted
 * (the group's floor), or a change of this slot whose answer was lost and which is found stored.
 * A change of this slot that timed out can never land after a later one.
 *
 * With `exclusive`, a fenced slot needs its context's lease (`claim`, taken on the first call of
 * any of the context's records; another live owner: `OwnershipError`, nothing done) and on its
 * own first call raises the record's revision by `OWNERSHIP_GAP`, so nothing a previous owner
 * sent can land after it; a change is sent only while the lease is valid, and a lost lease makes
 * every later call reject with `OwnershipLostError`.
 */
export class RecordSlot {
  readonly #bridge: Bridge;
  readonly #key: RecordKey;
  readonly #fenced: boolean;
  readonly #claim: ContextLease | undefined;
  #belief: Belief | undefined;
  // Changes sent whose outcome is unknown: each may be stored, or land later (below its fence).
  #uncertain: Belief[] = [];
  #lost: PersistError | undefined;
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
      if (this.#lost !== undefined) throw this.#lost;
      await this.#own(context);
      const found = await this.#bridge.records.read(this.#key);
      this.#belief ??= beliefOf(found);
      return found.found ? decodeValue(found.json, context) : undefined;
    });
  }

  /** Writes `value`; `encoded`, when given, is its text from {@link encodeValue}, already checked. */
  write(value: unknown, encoded?: string): Promise<void> {
    return this.#inOrder("write", async (context) => {
      const json = encoded ?? encodeValue(value, context);
      if (!this.#fenced) {
        await this.#bridge.records.write(this.#key, json);
        return;
      }
      await this.#fencedChange(context, json, (below) =>
        this.#bridge.records.write(this.#key, json, { condition: { below } }),
      );
    });
  }

  /** Writes `value` unless the record is there; true when it was written. */
  writeIfAbsent(value: unknown, encoded?: string): Promise<boolean> {
    return this.#inOrder("write", async (context) => {
      const json = encoded ?? encodeValue(value, context);
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
      await this.#fencedChange(context, undefined, (below) =>
        this.#bridge.records.delete(this.#key, { condition: { below } }),
      );
    });
  }

  // `json` is what the change leaves stored (`undefined`: a delete).
  async #fencedChange(
    context: PersistErrorContext,
    json: string | undefined,
    change: (below: number) => Promise<{ applied: boolean; revision: number }>,
  ): Promise<void> {
    if (this.#lost !== undefined) throw this.#lost;
    await this.#own(context);
    this.#belief ??= beliefOf(await this.#bridge.records.read(this.#key));
    const lease = this.#lease;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const belief: Belief = this.#belief;
      // While a change of unknown outcome may still land, fence at or above it.
      const fence = Math.max(belief.revision + 1, ...this.#uncertain.map(({ revision }) => revision));
      if (lease !== undefined) this.#assertLease(lease, context, "not-applied");
      let result: { applied: boolean; revision: number };
      try {
        result = await change(fence);
      } catch (error) {
        // It may be stored, or land later below this fence: the next change finds out.
        if ((error as PersistError | undefined)?.outcome !== "not-applied")
          this.#uncertain.push({ revision: fence, json });
        throw error;
      }
      if (result.applied) {
        this.#belief = { revision: result.revision, json };
        this.#uncertain = [];
        if (lease !== undefined) this.#assertLease(lease, context, "unknown");
        return;
      }
      if (lease !== undefined && this.#claim !== undefined && !(await this.#claim.current(lease, context))) {
        lease.lost = true;
        throw this.#refuse(
          new OwnershipLostError("another owner took the record; nothing was written", {
            ...context,
            outcome: "not-applied",
          }),
        );
      }
      const now = beliefOf(await this.#bridge.records.read(this.#key));
      const uncertain = this.#uncertain;
      // What can no longer land (its fence is not above the stored revision) is settled.
      this.#uncertain = uncertain.filter(({ revision }) => revision > now.revision);
      if (uncertain.some((sent) => sent.revision === now.revision && sent.json === now.json)) {
        // A change whose answer was lost is what is stored.
        this.#belief = now;
      } else if (
        now.json === undefined &&
        (belief.json === undefined ||
          uncertain.some((sent) => sent.json === undefined && sent.revision <= now.revision))
      ) {
        // Absent as it was (or as a delete of unknown outcome left it): only its group's floor
        // rose, because another record of the group was deleted.
        this.#belief = now;
      } else {
        throw this.#refuse(
          new OwnershipLostError(
            `another writer changed the record since this instance saw revision ${belief.revision} (it is at ${now.revision}): ` +
              "two processes manage it; nothing was written, and this instance writes no more (register the classes again, or restart, to take the stored value)",
            { ...context, outcome: "not-applied" },
          ),
        );
      }
    }
    throw new BackendUnavailableError(
      `the record's group changed under ${MAX_ATTEMPTS} attempts in a row; nothing was written`,
      { ...context, outcome: "not-applied" },
    );
  }

  // With `exclusive`: the context's lease, and this record raised above its previous owner once.
  async #own(context: PersistErrorContext): Promise<void> {
    const claim = this.#claim;
    if (claim === undefined) return;
    if (this.#lease !== undefined) {
      this.#assertLease(this.#lease, context, "not-applied");
      return;
    }
    const lease = await claim.get(context);
    this.#assertLease(lease, context, "not-applied");
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const stored = await this.#bridge.records.read(this.#key);
      const fence = Math.max(stored.revision, this.#belief?.revision ?? 0) + OWNERSHIP_GAP;
      const change = stored.found
        ? await this.#bridge.records.write(this.#key, stored.json, { condition: { below: fence } })
        : await this.#bridge.records.delete(this.#key, { condition: { below: fence } });
      if (!change.applied) continue;
      this.#belief = { revision: change.revision, json: stored.found ? stored.json : undefined };
      this.#uncertain = [];
      this.#assertLease(lease, context, "unknown");
      // Only now is the record this instance's: the previous owner's changes can no longer land.
      this.#lease = lease;
      return;
    }
    throw new BackendUnavailableError(
      `the record changed under ${MAX_ATTEMPTS} attempts to take it; another writer keeps changing it`,
      { ...context, outcome: "unknown" },
    );
  }

  #assertLease(lease: Lease, context: PersistErrorContext, outcome: "not-applied" | "unknown"): void {
    if (!lease.lost && this.#claim?.keeper.valid(lease)) return;
    lease.lost = true;
    throw this.#refuse(
      new OwnershipLostError(
        `${
          outcome === "unknown"
            ? "the change was acknowledged after the lease ran out; another owner may hold the record"
            : "the lease ran out (the process was paused, or the store did not answer renewals); nothing was written"
        }; register the classes again (or restart) to take it again`,
        { ...context, outcome },
      ),
    );
  }

  // Refused for good: every later call of this slot gets the same error.
  #refuse(error: OwnershipLostError): OwnershipLostError {
    this.#lost = error;
    return error;
  }

  #inOrder<T>(operation: PersistOperation, body: (context: PersistErrorContext) => Promise<T>): Promise<T> {
    const context = this.#bridge.context(operation, this.#key);
    const run = async (): Promise<T> => {
      this.#bridge.assertOpen(context);
      return body(context);
    };
    const result = this.#bridge.track(this.#tail.then(run, run));
    this.#tail = result.catch(() => {});
    return result;
  }
}
