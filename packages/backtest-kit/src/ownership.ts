import { createHash } from "node:crypto";
import {
  BackendClosedError,
  InvalidOptionError,
  LEASE_NAMESPACE,
  type Lease,
  type LeaseOwner,
  leaseIsCurrent,
  newLeaseOwner,
  OwnershipLostError,
  PersistError,
  type PersistErrorContext,
  type RecordKey,
  type RecordStore,
  releaseLease,
  renewLease,
  reportError,
  takeLease,
  wholeNumberOption,
} from "@persist-kit/core";

const DEFAULT_LEASE_MS = 30_000;

/** What `exclusive` holds for one record: its lease, and when it was taken. */
interface Held {
  readonly key: RecordKey;
  readonly lease: Lease;
  readonly owner: LeaseOwner;
  readonly since: string;
}

/**
 * The leases of one installation, with core's lease records (namespace `lease`, parts: the
 * record's namespace and parts): taken per record on its first use, renewed by one timer a third
 * to half a lease after each confirmation, counted valid for nine tenths of `leaseMs` on both
 * clocks, given back on close.
 */
export class LeaseKeeper {
  readonly leaseMs: number;
  readonly #records: RecordStore;
  readonly #held = new Map<string, Held>();
  readonly #renewals = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(records: RecordStore, exclusive: true | { leaseMs?: number }) {
    this.#records = records;
    const leaseMs = wholeNumberOption(
      "backtest-kit",
      "exclusive.leaseMs",
      exclusive === true ? undefined : exclusive.leaseMs,
      {
        default: DEFAULT_LEASE_MS,
        min: 100,
      },
    );
    if (!records.capabilities.ttl) {
      throw new InvalidOptionError("exclusive needs a store with TTL (leases expire when their owner dies)", {
        backend: records.name,
        operation: "create",
      });
    }
    this.leaseMs = leaseMs;
  }

  /**
   * Takes the lease of `key` for `owner` (one per context claim, so a claim disposed mid-take can
   * never take over the lease of the claim that replaced it), or {@link OwnershipError} when
   * another live owner holds it.
   */
  async take(key: RecordKey, owner: LeaseOwner, context: PersistErrorContext): Promise<Lease> {
    this.#assertOpen(context);
    const leaseKey = this.#leaseKey(key);
    const lease = await takeLease(this.#records, leaseKey, owner, this.leaseMs, context);
    if (this.#closed) {
      // Closed while the lease was on its way: given back, never renewed.
      await this.giveBack(key, lease);
      this.#assertOpen(context);
    }
    this.#held.set(JSON.stringify(leaseKey.parts), { key: leaseKey, lease, owner, since: new Date().toISOString() });
    this.#startRenewing();
    return lease;
  }

  /** Whether the lease is still this owner's by its own clocks. */
  valid(lease: Lease): boolean {
    return lease.valid(this.leaseMs - Math.ceil(this.leaseMs / 10));
  }

  /** Whether the lease record is still this owner's (read from the store). */
  current(key: RecordKey, lease: Lease, owner: LeaseOwner, context: PersistErrorContext): Promise<boolean> {
    return leaseIsCurrent(this.#records, this.#leaseKey(key), lease, owner, context);
  }

  /** Gives a lease back at once (a takeover that failed half way); a failure is reported, the lease then expires. */
  async giveBack(key: RecordKey, lease: Lease): Promise<void> {
    lease.lost = true;
    const leaseKey = this.#leaseKey(key);
    const id = JSON.stringify(leaseKey.parts);
    // Only this lease: another instance of the context may hold a newer one under the same key.
    if (this.#held.get(id)?.lease === lease) this.#held.delete(id);
    await releaseLease(this.#records, leaseKey, lease).catch((error: unknown) => {
      if (error instanceof PersistError) reportError(error);
    });
  }

  /** Stops renewing and gives every lease back; the first failure is thrown after all were tried. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#renewals]);
    const held = [...this.#held.values()].filter(({ lease }) => !lease.lost);
    this.#held.clear();
    // Lost first: nothing may count on a lease once it is on its way back.
    for (const { lease } of held) lease.lost = true;
    const results = await Promise.allSettled(held.map(({ key, lease }) => releaseLease(this.#records, key, lease)));
    const failed = results.find((result) => result.status === "rejected");
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }

  #assertOpen(context: PersistErrorContext): void {
    if (this.#closed) {
      throw new BackendClosedError("the persist-kit classes were closed; no lease is taken", {
        ...context,
        outcome: "not-applied",
      });
    }
  }

  // The first part, a hash of the whole key, gives every lease a revision group of its own: a
  // lease given back elsewhere never moves this one's revision (a take would then be refused).
  #leaseKey(key: RecordKey): RecordKey {
    const id = createHash("sha256")
      .update(JSON.stringify([key.namespace, ...key.parts]))
      .digest("hex")
      .slice(0, 32);
    return { namespace: LEASE_NAMESPACE, parts: [id, key.namespace, ...key.parts] };
  }

  #startRenewing(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#renewDue(), Math.max(1, Math.floor(this.leaseMs / 12)));
    this.#timer.unref();
  }

  #renewDue(): void {
    for (const { key, lease, owner, since } of this.#held.values()) {
      if (lease.lost || lease.renewing || !lease.due(this.leaseMs)) continue;
      if (!this.valid(lease)) {
        lease.lost = true;
        continue;
      }
      lease.renewing = true;
      const renewal = renewLease(this.#records, key, lease, owner, this.leaseMs, since)
        .then(
          (change) => {
            // Only an answer in time counts: a late one may come after another owner took over.
            if (!change.applied || !this.valid(lease)) lease.lost = true;
            else lease.renewed(change.revision, change.sent);
          },
          (error: unknown) => {
            // Not renewed: the lease runs out by its own clock unless the next renewal works.
            reportError(
              error instanceof PersistError
                ? error
                : new PersistError(`renewing a lease failed: ${String(error)}`, {
                    backend: this.#records.name,
                    operation: "write",
                    record: { namespace: key.namespace, parts: key.parts },
                    cause: error,
                  }),
            );
          },
        )
        .finally(() => {
          lease.renewing = false;
          this.#renewals.delete(renewal);
        });
      this.#renewals.add(renewal);
    }
  }
}

/**
 * The lease of one framework instance's context (its namespace and context parts), shared by every
 * record of the instance: a Partial instance's records of many signals hold one lease, not one
 * each. Taken once; lost for good once it runs out or another owner takes it.
 */
export class ContextLease {
  readonly #keeper: LeaseKeeper;
  readonly #key: RecordKey;
  #lease: Lease | undefined;
  #taking: Promise<Lease> | undefined;
  #released = false;
  readonly #owner: LeaseOwner = newLeaseOwner();

  constructor(keeper: LeaseKeeper, key: RecordKey) {
    this.#keeper = keeper;
    this.#key = key;
  }

  get keeper(): LeaseKeeper {
    return this.#keeper;
  }

  /** The lease, taken on first use; `undefined` once lost (the caller refuses then). */
  async get(context: PersistErrorContext): Promise<Lease> {
    if (this.#released) {
      // Disposed before (or while) its first call got here: no lease is taken for it any more.
      throw new OwnershipLostError("the framework disposed of this instance; nothing was done", {
        ...context,
        outcome: "not-applied",
      });
    }
    if (this.#lease !== undefined) return this.#lease;
    this.#taking ??= this.#keeper.take(this.#key, this.#owner, context).finally(() => {
      this.#taking = undefined;
    });
    const lease = await this.#taking;
    this.#lease ??= lease;
    return this.#lease;
  }

  /** Whether the lease record is still this owner's (read from the store). */
  current(lease: Lease, context: PersistErrorContext): Promise<boolean> {
    return this.#keeper.current(this.#key, lease, this.#owner, context);
  }

  /** Gives the lease back (the framework disposed of every instance of the context), also one still being taken. */
  async release(): Promise<void> {
    this.#released = true;
    const taking = this.#taking;
    const lease = this.#lease ?? (await taking?.catch(() => undefined));
    this.#lease = undefined;
    if (lease !== undefined && !lease.lost) await this.#keeper.giveBack(this.#key, lease);
  }
}
