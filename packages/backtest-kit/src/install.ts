import {
  BackendUnavailableError,
  type CreatePersistOptions,
  createPersist,
  InvalidOptionError,
  type RecordStore,
  wholeNumberOption,
} from "@persist-kit/core";
import { DOMAINS, type Domain, type DomainClasses, domainClasses } from "./domains.js";
import { LeaseKeeper } from "./ownership.js";
import { Bridge, settlesWithin } from "./record-slot.js";

/** Where the framework's data goes: a URL for `createPersist`, a persist-kit backend, or a record store. */
export type PersistKitSource = string | { readonly records: RecordStore } | RecordStore;

/** Options of {@link installPersistKit}. */
export interface InstallOptions {
  /** Options for `createPersist` when `source` is a URL. Default: none. */
  persist?: CreatePersistOptions;
  /** Register only these domains. Default: every domain the framework has a hook for. */
  domains?: readonly Domain[];
  /**
   * One owner per crash-critical record: the first call on a record takes its lease (another
   * live owner: `OwnershipError`, nothing done), renewed while the process lives and given back
   * on `close()`; a record taken over can never receive a change of its previous owner.
   * `leaseMs` (default 30000) is how long a dead owner keeps others out. Default: off (fences only).
   */
  exclusive?: boolean | { leaseMs?: number };
  /**
   * How long `close()` waits for calls still running before it gives the leases back anyway (their
   * late answers then report `OwnershipLostError`, outcome unknown) and rejects, and how long it
   * then waits for the leases to go back. Default: 10000.
   */
  closeTimeoutMs?: number;
}

/** What {@link installPersistKit} did. */
export interface Installation {
  /** The domains whose hooks now use persist-kit, in hook order. */
  readonly domains: readonly Domain[];
  /** Hooks the framework has that this package does not know (`PersistFooAdapter`), left alone. */
  readonly skipped: readonly string[];
  /** The classes registered, for tests and for registering by hand. */
  readonly classes: DomainClasses;
  /**
   * Every later call of a registered class rejects with `BackendClosedError` (never a silent
   * fallback); a store opened from a URL is closed, one passed in is not.
   */
  close(): Promise<void>;
}

/**
 * Registers persist-kit classes on every persistence hook of the backtest-kit module: for each
 * domain `D` the framework's `PersistDAdapter.usePersistDAdapter(Class)`. `framework` is the
 * module object (`import * as backtestKit from "backtest-kit"`).
 * @example
 * const persistence = await installPersistKit(backtestKit, process.env.PERSIST_URL ?? "file:./data");
 * // ... run the bot; on shutdown:
 * await persistence.close();
 */
export async function installPersistKit(
  framework: object,
  source: PersistKitSource,
  options: InstallOptions = {},
): Promise<Installation> {
  const wanted = new Set<Domain>(options.domains ?? DOMAINS);
  for (const domain of wanted) {
    if (!DOMAINS.includes(domain)) {
      throw new InvalidOptionError(`unknown domain ${JSON.stringify(domain)}; expected one of ${DOMAINS.join(", ")}`, {
        backend: "backtest-kit",
        operation: "create",
      });
    }
  }
  const hooks = frameworkHooks(framework);
  const { records, owned } = await recordStoreOf(source, options);
  const exclusive = options.exclusive;
  const leases = exclusive === undefined || exclusive === false ? undefined : new LeaseKeeper(records, exclusive);
  const bridge = new Bridge(records, leases);
  const classes = domainClasses(bridge);
  const closeTimeoutMs = wholeNumberOption("backtest-kit", "closeTimeoutMs", options.closeTimeoutMs, {
    default: 10_000,
    min: 0,
  });
  let closing: Promise<void> | undefined;
  const domains: Domain[] = [];
  for (const domain of DOMAINS) {
    const register = hooks.get(domain);
    if (register === undefined || !wanted.has(domain)) continue;
    register(classes[domain]);
    domains.push(domain);
  }
  const known = new Set<string>(DOMAINS);
  const skipped = [...hooks.keys()].filter((domain) => !known.has(domain)).map((domain) => `Persist${domain}Adapter`);
  return {
    domains,
    skipped,
    classes,
    close() {
      // Once: a second call (a signal handler and a finally, say) waits for the same close.
      closing ??= closeInstallation(bridge, leases, owned ? records : undefined, closeTimeoutMs);
      return closing;
    },
  };
}

async function closeInstallation(
  bridge: Bridge,
  leases: LeaseKeeper | undefined,
  owned: RecordStore | undefined,
  timeoutMs: number,
): Promise<void> {
  // Calls already running settle first: no change is acknowledged after a lease is given back.
  const running = await bridge.close(timeoutMs);
  // Giving the leases back goes to the same store: bounded too (a lease not given back expires).
  const released = await settlesWithin(leases?.close(), timeoutMs);
  if (!released) {
    throw new BackendUnavailableError(
      `the leases were not given back within ${timeoutMs} ms; they expire after leaseMs, and the store was left open`,
      { backend: bridge.records.name, operation: "close", outcome: "unknown" },
    );
  }
  if (running > 0) {
    // A store that does not answer: closing it would wait for the same calls.
    throw new BackendUnavailableError(
      `${running} calls were still running after ${timeoutMs} ms; their outcome is unknown, the leases were given back and the store was left open`,
      { backend: bridge.records.name, operation: "close", outcome: "unknown" },
    );
  }
  await owned?.close();
}

/**
 * The classes of every domain over one store, for registering by hand:
 * `PersistSignalAdapter.usePersistSignalAdapter(persistKitClasses(store).Signal)`.
 */
export function persistKitClasses(source: { readonly records: RecordStore } | RecordStore): DomainClasses {
  return domainClasses(new Bridge(isRecordStore(source) ? source : source.records));
}

// Every `PersistXAdapter` object of the module with a `usePersistXAdapter` function, by X.
function frameworkHooks(framework: object): Map<string, (ctor: unknown) => void> {
  const hooks = new Map<string, (ctor: unknown) => void>();
  for (const name of Object.keys(framework)) {
    const domain = /^Persist([A-Z][A-Za-z]*)Adapter$/.exec(name)?.[1];
    if (domain === undefined) continue;
    const hook = (framework as Record<string, unknown>)[name] as Record<string, unknown> | null | undefined;
    const use = hook?.[`usePersist${domain}Adapter`];
    if (typeof use === "function") hooks.set(domain, (ctor) => use.call(hook, ctor));
  }
  return hooks;
}

async function recordStoreOf(
  source: PersistKitSource,
  options: InstallOptions,
): Promise<{ records: RecordStore; owned: boolean }> {
  if (typeof source === "string") {
    const persist = (await createPersist(source, options.persist)) as unknown as { records?: RecordStore };
    if (persist.records === undefined || !isRecordStore(persist.records)) {
      throw new InvalidOptionError("the backend of this URL has no record store (`records`)", {
        backend: "backtest-kit",
        operation: "create",
      });
    }
    return { records: persist.records, owned: true };
  }
  if (isRecordStore(source)) return { records: source, owned: false };
  if (typeof source === "object" && source !== null && isRecordStore(source.records)) {
    return { records: source.records, owned: false };
  }
  throw new InvalidOptionError("source must be a URL, a persist-kit backend or a record store", {
    backend: "backtest-kit",
    operation: "create",
  });
}

function isRecordStore(value: unknown): value is RecordStore {
  const store = value as Partial<RecordStore> | null;
  return (
    typeof store === "object" &&
    store !== null &&
    typeof store.read === "function" &&
    typeof store.write === "function" &&
    typeof store.delete === "function" &&
    typeof store.list === "function"
  );
}
