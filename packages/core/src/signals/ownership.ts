import { hostname } from "node:os";
import { CorruptDataError, type LeaseHolder, OwnershipError, type PersistErrorContext } from "../errors.js";
import type { RecordChange, RecordKey, RecordStore } from "../records/record-store.js";

/** The namespace of ownership leases in every record store; parts are `[strategyName, symbol]`, as for signals. */
export const LEASE_NAMESPACE = "lease";

/**
 * How far a new owner raises a key's revision when it takes the key (2^30). The old owner's
 * operations carry revisions at most one above what it last saw per operation it sent, so
 * unless it sent more than a billion operations that never landed, every one of them is below
 * the new owner's fence and can never apply.
 */
export const OWNERSHIP_GAP = 2 ** 30;

/** The record key of a signal key's lease. */
export function leaseRecordKey(symbol: string, strategyName: string): RecordKey {
  return { namespace: LEASE_NAMESPACE, parts: [strategyName, symbol] };
}

/** What a lease record holds: the owner's token and who it is. */
interface LeaseValue extends LeaseHolder {
  readonly owner: string;
}

/** One adapter's identity as a lease owner. */
export interface LeaseOwner {
  /** Random per adapter: two adapters in one process are two owners. */
  readonly token: string;
  readonly host: string;
  readonly pid: number;
}

export function newLeaseOwner(): LeaseOwner {
  return { token: globalThis.crypto.randomUUID(), host: hostname(), pid: process.pid };
}

/**
 * A lease this adapter holds on one key: the lease record's revision and when the request that
 * confirmed it was sent. The lease counts as valid for `leaseMs` minus a margin from that moment,
 * on both the monotonic and the wall clock (a suspended machine stops the first, not the second),
 * so it ends here before the store lets it expire (the store starts its TTL later).
 */
export class Lease {
  revision: number;
  #sentMono: number;
  #sentWall: number;
  lost = false;
  renewing = false;

  constructor(revision: number, sent: Instant) {
    this.revision = revision;
    this.#sentMono = sent.mono;
    this.#sentWall = sent.wall;
  }

  /**
   * Whether it is time to renew: a third to half a lease after the last confirmation, at a random
   * point, so the leases of keys taken together are not all renewed in one burst.
   */
  due(leaseMs: number, now: Instant = instant()): boolean {
    this.#renewAfter ??= leaseMs * (1 / 3 + Math.random() / 6);
    return Math.max(now.mono - this.#sentMono, now.wall - this.#sentWall) >= this.#renewAfter;
  }

  #renewAfter: number | undefined;

  /** Whether the lease is still this adapter's by its own clocks, with `validMs` of validity. */
  valid(validMs: number, now: Instant = instant()): boolean {
    if (this.lost) return false;
    const mono = now.mono - this.#sentMono;
    const wall = now.wall - this.#sentWall;
    return mono < validMs && wall < validMs;
  }

  /** A renewal sent at `sent` was confirmed. */
  renewed(revision: number, sent: Instant): void {
    this.revision = revision;
    this.#sentMono = sent.mono;
    this.#sentWall = sent.wall;
    this.#renewAfter = undefined;
  }
}

/** A moment on both clocks. */
export interface Instant {
  readonly mono: number;
  readonly wall: number;
}

export function instant(): Instant {
  return { mono: performance.now(), wall: Date.now() };
}

/**
 * Takes the lease of a key unless another live owner holds it (then {@link OwnershipError},
 * nothing written). A lease of this same owner (lost earlier, not yet expired) is taken again.
 */
export async function takeLease(
  records: RecordStore,
  key: RecordKey,
  owner: LeaseOwner,
  leaseMs: number,
  context: PersistErrorContext,
): Promise<Lease> {
  const sent = instant();
  const value: LeaseValue = { owner: owner.token, host: owner.host, pid: owner.pid, since: new Date().toISOString() };
  let change: RecordChange | undefined;
  for (let attempt = 0; attempt < TAKE_ATTEMPTS && change === undefined; attempt++) {
    const current = await records.read(key);
    if (current.found) {
      const holder = parseLease(current.json, context);
      if (holder.owner !== owner.token) throw heldBy(holder, context);
    }
    const written = await records.write(key, JSON.stringify(value), {
      condition: { revision: current.revision },
      ttlMs: leaseMs,
    });
    if (written.applied) change = written;
    // Refused with the key still absent: its revision moved without an owner (a lease of another
    // key of the group was released, raising the group's floor). Read and try again.
  }
  if (change === undefined) {
    const now = await records.read(key);
    if (now.found) throw heldBy(parseLease(now.json, context), context);
    throw new OwnershipError("another owner took the key at the same moment", context);
  }
  if (!records.capabilities.ttlResetsRevision) return new Lease(change.revision, sent);
  // An expired lease forgot its revision here, so this lease may carry a revision the previous
  // owner's lease had, and a renewal of that owner still on its way would match it and take the
  // lease back. A random jump makes the two revisions differ.
  const jump = 1 + Math.floor(Math.random() * LEASE_JUMP);
  const jumped = await records.write(key, JSON.stringify(value), {
    condition: { below: change.revision + jump },
    ttlMs: leaseMs,
  });
  if (!jumped.applied) throw new OwnershipError("another owner took the key at the same moment", context);
  return new Lease(jumped.revision, sent);
}

// Takes refused while the key stays absent (other keys of its group released meanwhile).
const TAKE_ATTEMPTS = 8;

// At most 2^32 per take: a strategy's leases can be taken about a million times before revisions reach 2^52.
const LEASE_JUMP = 2 ** 32;

/** Extends a held lease; false when it is no longer this owner's (nothing changed then). */
export async function renewLease(
  records: RecordStore,
  key: RecordKey,
  lease: Lease,
  owner: LeaseOwner,
  leaseMs: number,
  since: string,
): Promise<{ applied: boolean; revision: number; sent: Instant }> {
  const sent = instant();
  const value: LeaseValue = { owner: owner.token, host: owner.host, pid: owner.pid, since };
  const change = await records.write(key, JSON.stringify(value), {
    condition: { revision: lease.revision },
    ttlMs: leaseMs,
  });
  return { ...change, sent };
}

/** Whether the lease record is still exactly the one `lease` confirmed. */
/**
 * Whether the lease record is still this owner's: its token, at the revision `lease` confirmed or
 * later (a renewal may have landed whose answer is still on its way).
 */
export async function leaseIsCurrent(
  records: RecordStore,
  key: RecordKey,
  lease: Lease,
  owner: LeaseOwner,
  context: PersistErrorContext,
): Promise<boolean> {
  const current = await records.read(key);
  return current.found && current.revision >= lease.revision && parseLease(current.json, context).owner === owner.token;
}

/** Gives the lease up, so another owner can take the key at once. */
export async function releaseLease(records: RecordStore, key: RecordKey, lease: Lease): Promise<void> {
  await records.delete(key, { condition: { revision: lease.revision } });
}

function heldBy(holder: LeaseValue, context: PersistErrorContext): OwnershipError {
  const who = `pid ${holder.pid} on host ${JSON.stringify(holder.host)} since ${holder.since}`;
  return new OwnershipError(
    `another owner holds the key: ${who}; nothing was written; reading is allowed, writing is not until its lease expires or it closes`,
    context,
    { host: holder.host, pid: holder.pid, since: holder.since },
  );
}

function parseLease(json: string, context: PersistErrorContext): LeaseValue {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new CorruptDataError("the key's lease record is not JSON", { ...context, cause: error });
  }
  const lease = value as Partial<LeaseValue> | null;
  if (
    typeof lease !== "object" ||
    lease === null ||
    typeof lease.owner !== "string" ||
    typeof lease.host !== "string" ||
    typeof lease.pid !== "number" ||
    typeof lease.since !== "string"
  ) {
    throw new CorruptDataError("the key's lease record is not a lease", context);
  }
  return lease as LeaseValue;
}
