import { KeyedQueue } from "../backend-kit/keyed-queue.js";
import { wholeNumberOption } from "../backend-kit/options.js";
import { RetryingOnce } from "../backend-kit/retrying-once.js";
import { getConfig, type PersistSource } from "../config.js";
import { createPersist } from "../create-persist.js";
import { reportError } from "../error-bus.js";
import {
  BackendClosedError,
  BackendUnavailableError,
  errorMessage,
  InvalidKeyError,
  InvalidOptionError,
  OwnershipLostError,
  PersistError,
  type PersistErrorContext,
  type PersistOperation,
  type PersistOutcome,
} from "../errors.js";
import type { RecordChange, RecordCondition, RecordStore } from "../records/record-store.js";
import { type SignalRecord, WRITE_CHECKED_SIGNAL } from "../records/signal-store.js";
import { assertSignalKey, keyProblem, type SignalKey, signalKeyId } from "./key.js";
import {
  type Lease,
  type LeaseOwner,
  leaseIsCurrent,
  leaseRecordKey,
  newLeaseOwner,
  OWNERSHIP_GAP,
  releaseLease,
  renewLease,
  takeLease,
} from "./ownership.js";
import type { PersistBase } from "./persist-base.js";
import { checkedSignalRow, checkStoredSignalRow, type ISignalRow } from "./row.js";

/** Options of {@link PersistSignalAdapter}. */
export interface SignalAdapterOptions {
  /**
   * Every call settles within this many milliseconds of the call, time spent queued behind
   * earlier operations on the same key included. Default: 10000.
   */
  timeoutMs?: number;
  /**
   * Single-writer ownership: the adapter takes a lease on each key it touches (at `waitForInit`
   * or the first write) and renews it in the background; another exclusive adapter, in any
   * process, that touches the key gets `OwnershipError` while this one lives. `true` takes the
   * default lease, 30000 ms (at least 3 × `timeoutMs`). Needs a record store (every bundled
   * backend is one).
   */
  exclusive?: boolean | { leaseMs?: number };
  /**
   * Accept a backend whose writes resolve before they are stored (`acknowledges: "queued"`, a
   * batch writer). Only for backtests: a crash loses what was acknowledged. Default: false.
   */
  acceptQueuedWrites?: boolean;
  /** At most this many calls wait on one key; more reject at once (`not-applied`). Default: 1000. */
  maxQueuedPerKey?: number;
  /** At most this many calls wait on the whole adapter; more reject at once. Default: 100000. */
  maxQueued?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_QUEUED_PER_KEY = 1_000;
const DEFAULT_MAX_QUEUED = 100_000;
const DEFAULT_LEASE_MS = 30_000;
const MAX_FENCE_ATTEMPTS = 100;

/** What the adapter fences through: a `RecordSignalStore` (every bundled backend), from any copy of core. */
interface FencedStore extends PersistBase {
  readonly records: RecordStore;
  readonly ttlMs: number | undefined;
  readSignalRecord(symbol: string, strategyName: string): Promise<SignalRecord>;
  writeSignalIf(
    symbol: string,
    strategyName: string,
    row: ISignalRow,
    condition: RecordCondition,
  ): Promise<RecordChange>;
  deleteSignalIf(symbol: string, strategyName: string, condition: RecordCondition): Promise<RecordChange>;
  [WRITE_CHECKED_SIGNAL]?(
    symbol: string,
    strategyName: string,
    json: string,
    condition: RecordCondition,
  ): Promise<RecordChange>;
}

function asFenced(backend: PersistBase): FencedStore | undefined {
  const store = backend as Partial<FencedStore>;
  return typeof store.readSignalRecord === "function" &&
    typeof store.writeSignalIf === "function" &&
    typeof store.deleteSignalIf === "function" &&
    typeof store.records === "object"
    ? (store as FencedStore)
    : undefined;
}

/** What the adapter knows about one key. */
interface KeyState {
  readonly symbol: string;
  readonly strategyName: string;
  /** The row the store holds as far as this adapter knows; `undefined`: read it at the next `waitForInit`. */
  view: ISignalRow | null | undefined;
  /** Until when the view holds, on the monotonic and the wall clock: a row written with a TTL expires. */
  viewUntil: number;
  viewUntilWall: number;
  /** The highest revision this adapter has seen or sent for the key: every change is fenced above it. */
  fence: number | undefined;
  lease: Lease | undefined;
  leaseSince: string;
}

/** One running call: its deadline and whether the caller has already been answered by it. */
interface Call {
  readonly context: PersistErrorContext;
  readonly deadline: number;
  timedOut: boolean;
}

/**
 * What a live bot uses: one open signal per strategy and symbol, recovered after a restart.
 *
 * - Operations on one key reach the backend one at a time, in call order; `waitForInit` answers
 *   after every earlier call on the key, and reads the store when the adapter has no view of it.
 * - Every write and delete on a record store (every bundled backend) is **fenced**: it carries a
 *   revision above every revision seen or sent before on that key, and the store applies it only
 *   if nothing later was applied. A call reported `not-applied` never takes effect; once a call is
 *   acknowledged, no earlier call on that key takes effect afterwards, whatever a driver retries
 *   or a server delays. A backend that implements only `PersistBase` is not fenced.
 * - Every call settles within `timeoutMs` of the call. Every error is a {@link PersistError}
 *   whose `outcome` says whether the store may have changed; it goes to {@link listenError}
 *   subscribers and is re-thrown. After a failed call the adapter drops its view of the key.
 * - With `exclusive`, one owner per key across processes (see {@link SignalAdapterOptions}).
 *
 * Nothing is opened before the first operation.
 *
 * @example
 * const signals = new PersistSignalAdapter(await createPersist("file:./data"), { exclusive: true });
 * const open = await signals.waitForInit("BTC/USDT", "momentum"); // null when flat
 * await signals.setPendingSignal("BTC/USDT", "momentum", row);
 * await signals.deletePendingSignal("BTC/USDT", "momentum");
 * await signals.close(); // releases the leases: a restart takes over at once
 */
export class PersistSignalAdapter {
  readonly #source: PersistSource | undefined;
  readonly #backend = new RetryingOnce<PersistBase>(() => {
    const source = this.#source ?? getConfig().persistAdapter ?? defaultPersist;
    if (source === defaultPersist) this.#ownsBackend = true;
    return Promise.resolve(typeof source === "function" ? source() : source);
  });
  readonly #keys = new Map<string, KeyState>();
  readonly #strategyFences = new Map<string, number>();
  readonly #queue = new KeyedQueue();
  readonly #timeoutMs: number;
  readonly #acceptQueuedWrites: boolean;
  readonly #maxQueuedPerKey: number;
  readonly #maxQueued: number;
  readonly #waiting = new Map<string, number>();
  #waitingTotal = 0;
  readonly #leaseMs: number | undefined;
  readonly #owner: LeaseOwner | undefined;
  #ownsBackend = false;
  #renewTimer: ReturnType<typeof setInterval> | undefined;
  readonly #renewals = new Set<Promise<void>>();
  #closed = false;

  /**
   * @param persist the backend; default: `setConfig({ persistAdapter })`, else the file backend.
   * @throws InvalidOptionError for a `timeoutMs` or `leaseMs` that is not a whole number in range,
   *   or a `leaseMs` below 3 × `timeoutMs` (a renewal must fit in the lease).
   */
  constructor(persist?: PersistSource, options: SignalAdapterOptions = {}) {
    this.#source = persist;
    this.#timeoutMs = wholeNumberOption("adapter", "timeoutMs", options.timeoutMs, {
      default: DEFAULT_TIMEOUT_MS,
      min: 1,
      max: 2 ** 31 - 1,
    });
    this.#acceptQueuedWrites = options.acceptQueuedWrites === true;
    this.#maxQueuedPerKey = wholeNumberOption("adapter", "maxQueuedPerKey", options.maxQueuedPerKey, {
      default: DEFAULT_MAX_QUEUED_PER_KEY,
      min: 1,
    });
    this.#maxQueued = wholeNumberOption("adapter", "maxQueued", options.maxQueued, {
      default: DEFAULT_MAX_QUEUED,
      min: 1,
    });
    const exclusive = options.exclusive;
    if (exclusive === undefined || exclusive === false) return;
    if (exclusive !== true && (typeof exclusive !== "object" || exclusive === null)) {
      throw new InvalidOptionError("exclusive must be true, false or { leaseMs }", {
        backend: "adapter",
        operation: "create",
      });
    }
    const leaseMs = wholeNumberOption("adapter", "leaseMs", exclusive === true ? undefined : exclusive.leaseMs, {
      default: Math.max(DEFAULT_LEASE_MS, 3 * this.#timeoutMs),
      min: 1,
      max: 2 ** 31 - 1,
    });
    if (leaseMs < 3 * this.#timeoutMs) {
      throw new InvalidOptionError(
        `leaseMs (${leaseMs}) must be at least 3 × timeoutMs (${this.#timeoutMs}), so a renewal fits in the lease`,
        { backend: "adapter", operation: "create" },
      );
    }
    this.#leaseMs = leaseMs;
    this.#owner = newLeaseOwner();
  }

  /**
   * The key's open signal, or `null`. Reads the store when the adapter has no view of the key
   * (first call, after a failed call, after a TTL ran out); with `exclusive`, takes the key's lease
   * first, also again after {@link OwnershipLostError}.
   */
  waitForInit(symbol: string, strategyName: string): Promise<ISignalRow | null> {
    return this.#operation("init", symbol, strategyName, async (call, backend, state) => {
      const fenced = asFenced(backend);
      if (this.#owner !== undefined) await this.#own(call, this.#needFenced(fenced, call), state, true);
      if (state.view === undefined || performance.now() >= state.viewUntil || Date.now() >= state.viewUntilWall) {
        if (fenced !== undefined) {
          const stored = await fenced.readSignalRecord(symbol, strategyName);
          this.#raiseFence(state, stored.revision);
          if (!call.timedOut) this.#setView(state, stored.row, fenced, undefined);
        } else {
          const stored = await backend.readSignalData(symbol, strategyName);
          const row = stored === null ? null : checkRead(stored, backend, symbol, strategyName);
          if (!call.timedOut) this.#setView(state, row, undefined, undefined);
        }
      }
      const row = state.view ?? null;
      return row === null ? null : structuredClone(row);
    });
  }

  /** Validates `row`, then stores it as the key's open signal. */
  setPendingSignal(symbol: string, strategyName: string, row: ISignalRow): Promise<void> {
    let snapshot: ISignalRow;
    let json: string;
    try {
      assertSignalKey(symbol, strategyName, { backend: "adapter", operation: "write" });
      // A copy of exactly what will be stored: later changes to `row` change nothing.
      ({ json, stored: snapshot } = checkedSignalRow(row, {
        backend: "adapter",
        operation: "write",
        symbol,
        strategyName,
      }));
    } catch (error) {
      return Promise.reject(this.#report(error, { backend: "adapter", operation: "write", symbol, strategyName }));
    }
    return this.#operation("write", symbol, strategyName, async (call, backend, state) => {
      const fenced = asFenced(backend);
      if (fenced === undefined && this.#owner === undefined) {
        await backend.writeSignalData(symbol, strategyName, snapshot);
        if (!call.timedOut) this.#setView(state, snapshot, undefined, undefined);
        return;
      }
      const store = this.#needFenced(fenced, call);
      const writeChecked = store[WRITE_CHECKED_SIGNAL];
      const sentAt = await this.#change(call, store, state, (condition) =>
        writeChecked === undefined
          ? store.writeSignalIf(symbol, strategyName, snapshot, condition)
          : writeChecked.call(store, symbol, strategyName, json, condition),
      );
      if (!call.timedOut) this.#setView(state, snapshot, store, sentAt);
    });
  }

  /** Removes the key's open signal; removing a missing one succeeds. */
  deletePendingSignal(symbol: string, strategyName: string): Promise<void> {
    return this.#operation("delete", symbol, strategyName, async (call, backend, state) => {
      const fenced = asFenced(backend);
      if (fenced === undefined && this.#owner === undefined) {
        await backend.deleteSignalData(symbol, strategyName);
        if (!call.timedOut) this.#setView(state, null, undefined, undefined);
        return;
      }
      const store = this.#needFenced(fenced, call);
      const sentAt = await this.#change(call, store, state, (condition) =>
        store.deleteSignalIf(symbol, strategyName, condition),
      );
      if (!call.timedOut) this.#setView(state, null, store, sentAt);
    });
  }

  /**
   * Forgets the key: gives up its lease (with `exclusive`) and drops the adapter's view, so the
   * state the adapter keeps stays bounded by the keys a bot manages at once.
   */
  release(symbol: string, strategyName: string): Promise<void> {
    return this.#operation("lease", symbol, strategyName, async (_call, backend, state) => {
      this.#keys.delete(signalKeyId(symbol, strategyName));
      const fenced = asFenced(backend);
      if (fenced && state.lease?.valid(this.#validMs())) {
        state.lease.lost = true;
        await releaseLease(fenced.records, leaseRecordKey(symbol, strategyName), state.lease);
      }
    });
  }

  /**
   * The open signals the store holds, of one strategy or of all: what a bot restarting takes up
   * again (then `waitForInit` for each key it manages, which takes the key under `exclusive`).
   * Calls made before the listing settle first, so it shows their outcome; each row is then read
   * in its key's order with later calls, within `timeoutMs`. Listing takes no lease. Needs a backend that lists its keys (every bundled one does).
   * @example
   * for await (const { symbol, row } of signals.openSignals("momentum")) console.log(symbol, row.position);
   */
  async *openSignals(strategyName?: string): AsyncGenerator<{ symbol: string; strategyName: string; row: ISignalRow }> {
    if (strategyName !== undefined && keyProblem(strategyName) !== undefined) {
      throw new InvalidKeyError(`strategyName ${keyProblem(strategyName)}`, { backend: "adapter", operation: "list" });
    }
    const backend = await this.#backend.get().catch((error: unknown) => {
      throw withOutcome(error, "not-applied");
    });
    if (this.#closed)
      throw new BackendClosedError("the adapter was closed", { backend: backendName(backend), operation: "list" });
    // Calls made before the listing settle first: it shows what they did.
    await this.#queue.drain();
    if (backend.keys === undefined) {
      throw new InvalidOptionError("this backend cannot list its keys (PersistBase.keys)", {
        backend: backendName(backend),
        operation: "list",
      });
    }
    const list = backend.keys as (options?: { strategyName?: string }) => AsyncIterable<SignalKey>;
    for await (const key of list.call(backend, strategyName === undefined ? {} : { strategyName })) {
      if (strategyName !== undefined && key.strategyName !== strategyName) continue;
      const row = await this.#operation("read", key.symbol, key.strategyName, async (_call, source) => {
        const stored = await source.readSignalData(key.symbol, key.strategyName);
        return stored === null ? null : checkRead(stored, source, key.symbol, key.strategyName);
      });
      if (row !== null) yield { symbol: key.symbol, strategyName: key.strategyName, row };
    }
  }

  /**
   * Waits for running calls, releases every lease this adapter holds (so a planned restart takes
   * over at once) and stops renewing; closes the backend only when the adapter made it itself
   * (the default file backend). Later calls reject with `BackendClosedError`.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#renewTimer !== undefined) clearInterval(this.#renewTimer);
    await this.#queue.drain();
    // A renewal on its way changes the lease's revision: release what it leaves.
    await Promise.allSettled([...this.#renewals]);
    const backend = this.#backend.done ? this.#backend.value : undefined;
    const fenced = backend === undefined ? undefined : asFenced(backend);
    const releases: Promise<void>[] = [];
    for (const state of this.#keys.values()) {
      const lease = state.lease;
      if (fenced === undefined || lease === undefined || !lease.valid(this.#validMs())) continue;
      lease.lost = true;
      const context = leaseContext(fenced, state);
      releases.push(
        releaseLease(fenced.records, leaseRecordKey(state.symbol, state.strategyName), lease).catch((error) => {
          this.#report(error, context);
        }),
      );
    }
    await Promise.all(releases);
    this.#keys.clear();
    if (this.#ownsBackend && backend?.close !== undefined) await backend.close();
  }

  // ---- calls -------------------------------------------------------------------------------

  /**
   * Runs `body` after every earlier call on the key, within the deadline counted from now. A call
   * still queued at its deadline never starts (`not-applied`); one running at its deadline is
   * answered `unknown` and holds the calls behind it until the store answers it, so the store
   * never has two calls of one key at once. At most `maxQueuedPerKey` calls wait per key and
   * `maxQueued` in all: a store that stopped answering cannot make the process grow without bound.
   */
  #operation<T>(
    operation: PersistOperation,
    symbol: string,
    strategyName: string,
    body: (call: Call, backend: PersistBase, state: KeyState) => Promise<T>,
  ): Promise<T> {
    const context: PersistErrorContext = { backend: "adapter", operation, symbol, strategyName };
    try {
      assertSignalKey(symbol, strategyName, context);
    } catch (error) {
      return Promise.reject(this.#report(error, context));
    }
    if (this.#closed) {
      return Promise.reject(this.#report(new BackendClosedError("the adapter was closed", context), context));
    }
    const id = signalKeyId(symbol, strategyName);
    const waitingHere = this.#waiting.get(id) ?? 0;
    if (waitingHere >= this.#maxQueuedPerKey || this.#waitingTotal >= this.#maxQueued) {
      const full =
        waitingHere >= this.#maxQueuedPerKey
          ? `${waitingHere} calls already wait on this key (maxQueuedPerKey)`
          : `${this.#waitingTotal} calls already wait on this adapter (maxQueued)`;
      const error = new BackendUnavailableError(`${full}; the store is not keeping up; nothing was sent`, {
        ...context,
        outcome: "not-applied",
      });
      return Promise.reject(this.#report(error, context));
    }
    this.#waiting.set(id, waitingHere + 1);
    this.#waitingTotal++;
    const call: Call = { context, deadline: performance.now() + this.#timeoutMs, timedOut: false };
    return new Promise<T>((resolve, reject) => {
      let phase: "queued" | "connecting" | "sent" = "queued";
      const expire = () => {
        if (call.timedOut) return;
        call.timedOut = true;
        clearTimeout(timer);
        this.#forgetView(id);
        // An exclusive waitForInit writes too (the lease, the takeover's rewrite).
        const writes = operation !== "init" || this.#owner !== undefined;
        const outcome: PersistOutcome = phase === "sent" && writes ? "unknown" : "not-applied";
        const what =
          phase === "queued"
            ? `the call waited ${this.#timeoutMs} ms behind earlier calls on the key; nothing was sent`
            : phase === "connecting"
              ? `the backend was not ready within ${this.#timeoutMs} ms of the call; nothing was sent`
              : outcome === "unknown"
                ? `the backend did not answer within ${this.#timeoutMs} ms of the call; the change may have been applied, and a later call on the key is fenced above it`
                : `the backend did not answer within ${this.#timeoutMs} ms of the call`;
        reject(this.#report(new BackendUnavailableError(what, { ...call.context, outcome }), call.context));
      };
      const timer = setTimeout(expire, this.#timeoutMs);
      const fail = (error: unknown) => {
        clearTimeout(timer);
        if (call.timedOut) return;
        this.#forgetView(id);
        reject(this.#report(error, call.context));
      };
      let counted = true;
      const done = () => {
        if (!counted) return;
        counted = false;
        this.#waitingTotal--;
        const left = (this.#waiting.get(id) ?? 1) - 1;
        if (left === 0) this.#waiting.delete(id);
        else this.#waiting.set(id, left);
      };
      this.#queue
        .run(id, async () => {
          // Its turn came at or after its deadline (the timer may not have fired yet): never sent.
          if (performance.now() >= call.deadline) expire();
          if (call.timedOut) return;
          phase = "connecting";
          let backend: PersistBase;
          try {
            backend = this.#backend.value ?? (await this.#backend.get());
            if (typeof backend !== "object" || backend === null) {
              throw new InvalidOptionError(`the backend source gave ${String(backend)}, not a backend`, call.context);
            }
          } catch (error) {
            fail(withOutcome(error, "not-applied"));
            return;
          }
          if (backend.acknowledges === "queued" && !this.#acceptQueuedWrites) {
            fail(
              new InvalidOptionError(
                'this backend acknowledges writes before they are stored (acknowledges: "queued"): a crash loses them; pass acceptQueuedWrites: true only for backtests',
                { ...call.context, backend: backendName(backend), outcome: "not-applied" },
              ),
            );
            return;
          }
          if (performance.now() >= call.deadline) expire();
          if (call.timedOut) return;
          phase = "sent";
          call.context.backend = backendName(backend);
          let work: Promise<T>;
          try {
            work = body(call, backend, this.#state(id, symbol, strategyName));
          } catch (error) {
            work = Promise.reject(error);
          }
          const settled = work.then(
            (value) => {
              clearTimeout(timer);
              done();
              if (!call.timedOut) resolve(value);
            },
            (error: unknown) => {
              done();
              fail(error);
            },
          );
          // The next call on the key waits for this one to settle, also past its deadline: the store
          // never has two calls of one key at once.
          await settled;
        })
        .finally(done);
    });
  }

  /**
   * One fenced change: above every revision seen or sent on the key. When the store reports a
   * higher revision (another writer, or a delete of another key of the strategy raising the
   * group's floor), it fences again above that; an exclusive owner first checks that the lease is
   * still its own.
   */
  async #change(
    call: Call,
    store: FencedStore,
    state: KeyState,
    send: (condition: RecordCondition) => Promise<RecordChange>,
  ): Promise<number> {
    if (this.#owner !== undefined) await this.#own(call, store, state, false);
    if (state.fence === undefined) {
      const stored = await store.readSignalRecord(state.symbol, state.strategyName);
      this.#raiseFence(state, stored.revision);
    }
    for (let attempt = 0; attempt < MAX_FENCE_ATTEMPTS && !call.timedOut; attempt++) {
      const fence = this.#nextFence(state);
      this.#raiseFence(state, fence);
      const lease = state.lease;
      if (this.#owner !== undefined) this.#assertLeaseValid(call, state, "not-applied");
      const sentAt = performance.now();
      const change = await send({ below: fence });
      this.#raiseFence(state, change.revision);
      if (change.applied) {
        if (lease !== undefined && !lease.valid(this.#validMs())) {
          lease.lost = true;
          throw this.#lost(
            call,
            "unknown",
            "the change was acknowledged after the lease ran out; another owner may hold the key",
          );
        }
        return sentAt;
      }
      const owner = this.#owner;
      if (
        lease !== undefined &&
        owner !== undefined &&
        !(await leaseIsCurrent(store.records, this.#leaseKey(state), lease, owner, call.context))
      ) {
        lease.lost = true;
        throw this.#lost(call, "not-applied", "another owner took the key; nothing was written");
      }
    }
    if (call.timedOut) return performance.now();
    throw new BackendUnavailableError(
      `the key changed under ${MAX_FENCE_ATTEMPTS} fenced attempts in a row; another writer keeps changing it`,
      { ...call.context, outcome: "not-applied" },
    );
  }

  // ---- ownership ---------------------------------------------------------------------------

  /**
   * Makes sure this adapter owns the key. `explicit` (`waitForInit`) takes it, also after a lost
   * lease; a write takes a key never taken, and rejects with {@link OwnershipLostError} once a
   * lease was lost. Taking raises the key's revision by {@link OWNERSHIP_GAP} (rewriting the row
   * it holds), so nothing the previous owner sent can land afterwards.
   */
  async #own(call: Call, store: FencedStore, state: KeyState, explicit: boolean): Promise<void> {
    const leaseMs = this.#leaseMs;
    const owner = this.#owner;
    if (leaseMs === undefined || owner === undefined) return;
    const lease = state.lease;
    if (lease?.valid(this.#validMs())) return;
    if (lease !== undefined && !explicit) {
      lease.lost = true;
      throw this.#lost(
        call,
        "not-applied",
        "the lease ran out; nothing was written; take the key again with waitForInit",
      );
    }
    if (store.ttlMs !== undefined && store.records.capabilities.ttlResetsRevision) {
      // An expired row forgets its revision there, so a takeover could not fence above the old owner.
      throw new InvalidOptionError(
        "exclusive cannot fence on a store whose expiry forgets revisions while rows have a ttlMs; drop ttlMs",
        { ...call.context, outcome: "not-applied" },
      );
    }
    // A lost lease stays in place until a new one is taken: a write after a failed take still
    // refuses, and never takes the key behind the application's back.
    state.view = undefined;
    const taken = await takeLease(store.records, this.#leaseKey(state), owner, leaseMs, call.context);
    const giveUp = () => {
      taken.lost = true;
      releaseLease(store.records, this.#leaseKey(state), taken).catch((error: unknown) => {
        this.#report(error, leaseContext(store, state));
      });
    };
    try {
      for (let attempt = 0; attempt < MAX_FENCE_ATTEMPTS && !call.timedOut; attempt++) {
        const stored = await store.readSignalRecord(state.symbol, state.strategyName);
        const fence = Math.max(stored.revision, state.fence ?? 0) + OWNERSHIP_GAP;
        this.#raiseFence(state, fence);
        const sentAt = performance.now();
        const change =
          stored.row === null
            ? await store.deleteSignalIf(state.symbol, state.strategyName, { below: fence })
            : await store.writeSignalIf(state.symbol, state.strategyName, stored.row, { below: fence });
        this.#raiseFence(state, change.revision);
        if (!change.applied) continue;
        if (!taken.valid(this.#validMs())) {
          giveUp();
          throw this.#lost(call, "unknown", "the lease ran out while the key was taken");
        }
        // Only now is the key this adapter's: the previous owner's calls can no longer land.
        state.lease = taken;
        state.leaseSince = new Date().toISOString();
        this.#startRenewing(store);
        if (!call.timedOut) this.#setView(state, stored.row, store, sentAt);
        return;
      }
    } catch (error) {
      if (!taken.lost) giveUp();
      throw error;
    }
    giveUp();
    if (call.timedOut) return;
    throw new BackendUnavailableError(
      `the key changed under ${MAX_FENCE_ATTEMPTS} attempts to take it; another writer keeps changing it`,
      { ...call.context, outcome: "unknown" },
    );
  }

  #assertLeaseValid(call: Call, state: KeyState, outcome: PersistOutcome): void {
    const lease = state.lease;
    if (lease?.valid(this.#validMs())) return;
    if (lease !== undefined) lease.lost = true;
    throw this.#lost(call, outcome, "the lease ran out; nothing was written; take the key again with waitForInit");
  }

  #lost(call: Call, outcome: PersistOutcome, message: string): OwnershipLostError {
    return new OwnershipLostError(message, { ...call.context, outcome });
  }

  #startRenewing(store: FencedStore): void {
    const leaseMs = this.#leaseMs;
    if (this.#renewTimer !== undefined || leaseMs === undefined) return;
    this.#renewTimer = setInterval(() => this.#renewAll(store), Math.max(1, Math.floor(leaseMs / 12)));
    this.#renewTimer.unref?.();
  }

  // One timer for every key: each held lease is renewed once it is due (see Lease.due).
  #renewAll(store: FencedStore): void {
    const leaseMs = this.#leaseMs;
    const owner = this.#owner;
    if (leaseMs === undefined || owner === undefined) return;
    for (const state of this.#keys.values()) {
      const lease = state.lease;
      if (lease === undefined || lease.lost || lease.renewing || !lease.due(leaseMs)) continue;
      if (!lease.valid(this.#validMs())) {
        lease.lost = true;
        continue;
      }
      lease.renewing = true;
      const context = leaseContext(store, state);
      const renewal = renewLease(store.records, this.#leaseKey(state), lease, owner, leaseMs, state.leaseSince)
        .then(
          (change) => {
            // Confirmed only when it was confirmed in time: a late answer may come after a takeover.
            if (!change.applied || !lease.valid(this.#validMs())) lease.lost = true;
            else lease.renewed(change.revision, change.sent);
          },
          (error: unknown) => {
            this.#report(error, context);
          },
        )
        .finally(() => {
          lease.renewing = false;
          this.#renewals.delete(renewal);
        });
      this.#renewals.add(renewal);
    }
  }

  // The lease ends here a tenth before the store lets it expire: clocks and timers are not exact.
  #validMs(): number {
    const leaseMs = this.#leaseMs ?? 0;
    return leaseMs - Math.ceil(leaseMs / 10);
  }

  #leaseKey(state: KeyState) {
    return leaseRecordKey(state.symbol, state.strategyName);
  }

  #needFenced(fenced: FencedStore | undefined, call: Call): FencedStore {
    if (fenced !== undefined) return fenced;
    throw new InvalidOptionError(
      "exclusive needs a record store (every bundled backend is one); this backend implements only PersistBase",
      { ...call.context, outcome: "not-applied" },
    );
  }

  // ---- state -------------------------------------------------------------------------------

  #state(id: string, symbol: string, strategyName: string): KeyState {
    let state = this.#keys.get(id);
    if (state === undefined) {
      state = {
        symbol,
        strategyName,
        view: undefined,
        viewUntil: Number.POSITIVE_INFINITY,
        viewUntilWall: Number.POSITIVE_INFINITY,
        fence: undefined,
        lease: undefined,
        leaseSince: "",
      };
      this.#keys.set(id, state);
    }
    return state;
  }

  // A delete raises its strategy's revision floor, and with it every absent key of the strategy:
  // fencing above the highest revision seen in the strategy saves the refused first attempt.
  #raiseFence(state: KeyState, revision: number): void {
    state.fence = Math.max(state.fence ?? 0, revision);
    if (revision > (this.#strategyFences.get(state.strategyName) ?? 0)) {
      this.#strategyFences.set(state.strategyName, revision);
    }
  }

  // An exclusive owner fences from the key's own revision only: a new owner's takeover gap is
  // counted from that key's revision, so nothing the old owner sent may be counted from higher.
  #nextFence(state: KeyState): number {
    const strategyFence = this.#owner === undefined ? (this.#strategyFences.get(state.strategyName) ?? 0) : 0;
    return Math.max(state.fence ?? 0, strategyFence) + 1;
  }

  // A row written with a TTL is known until the TTL runs out counted from before the write was
  // sent (the store counts from later); a row read with a TTL on is not kept (its age is unknown).
  // `writtenAt`: when the write that stored `row` was sent; `undefined` for a row read, or written
  // to a store that has no TTL.
  #setView(
    state: KeyState,
    row: ISignalRow | null,
    store: FencedStore | undefined,
    writtenAt: number | undefined,
  ): void {
    state.view = row;
    const ttlMs = store?.ttlMs;
    if (row === null || ttlMs === undefined) {
      state.viewUntil = Number.POSITIVE_INFINITY;
      state.viewUntilWall = Number.POSITIVE_INFINITY;
    } else if (writtenAt === undefined) {
      state.viewUntil = Number.NEGATIVE_INFINITY;
      state.viewUntilWall = Number.NEGATIVE_INFINITY;
    } else {
      // The wall clock keeps counting while the machine sleeps; the monotonic one may not.
      state.viewUntil = writtenAt + ttlMs;
      state.viewUntilWall = Date.now() - (performance.now() - writtenAt) + ttlMs;
    }
  }

  #forgetView(id: string): void {
    const state = this.#keys.get(id);
    if (state !== undefined) state.view = undefined;
  }

  // Every failure goes to listenError; a foreign error is named after the backend that threw it.
  #report(error: unknown, context: PersistErrorContext): PersistError {
    const persistError =
      error instanceof PersistError ? error : new PersistError(errorMessage(error), { ...context, cause: error });
    reportError(persistError);
    return persistError;
  }
}

// The error context of a background lease operation on a key.
function leaseContext(store: FencedStore, state: KeyState): PersistErrorContext {
  return {
    backend: store.name ?? "adapter",
    operation: "lease",
    symbol: state.symbol,
    strategyName: state.strategyName,
  };
}

function defaultPersist(): Promise<PersistBase> {
  return createPersist(process.env.PERSIST_URL ?? "file:./data");
}

function backendName(backend: PersistBase): string {
  return backend.name ?? backend.constructor?.name ?? "custom";
}

function checkRead(stored: unknown, backend: PersistBase, symbol: string, strategyName: string): ISignalRow {
  const context = { backend: backendName(backend), operation: "read", symbol, strategyName } as const;
  if (stored === undefined)
    throw new PersistError("backend returned undefined; a missing signal must be null", context);
  return checkStoredSignalRow(stored, context);
}

// Making the backend sends nothing: a failure there changed nothing.
function withOutcome(error: unknown, outcome: PersistOutcome): unknown {
  if (error instanceof PersistError) return error;
  return new PersistError(errorMessage(error), { backend: "adapter", operation: "create", outcome, cause: error });
}
