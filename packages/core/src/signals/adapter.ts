import { KeyedQueue } from "../backend-kit/keyed-queue.js";
import { RetryingOnce } from "../backend-kit/retrying-once.js";
import { getConfig, type PersistSource } from "../config.js";
import { createPersist } from "../create-persist.js";
import { reportError } from "../error-bus.js";
import { errorMessage, PersistError, type PersistOperation } from "../errors.js";
import { assertSignalKey, signalKeyId } from "./key.js";
import type { PersistBase } from "./persist-base.js";
import { assertSignalRow, checkStoredSignalRow, type ISignalRow } from "./row.js";

/**
 * What a live bot uses: one open signal per strategy and symbol, recovered after a restart.
 *
 * - `waitForInit` reads each key once; concurrent callers share that read, and a failed read is
 *   retried by the next call.
 * - Operations on one key reach the backend one at a time, in call order.
 * - Rows and keys are validated before any backend call.
 * - Every failure goes to {@link listenError} subscribers and is re-thrown as a {@link PersistError}.
 *
 * Nothing is opened before the first operation.
 *
 * @example
 * const signals = new PersistSignalAdapter(await createPersist("file:./data"));
 * const open = await signals.waitForInit("BTC/USDT", "momentum"); // null when flat
 * await signals.setPendingSignal("BTC/USDT", "momentum", row);
 * await signals.deletePendingSignal("BTC/USDT", "momentum");
 */
export class PersistSignalAdapter {
  readonly #source: PersistSource | undefined;
  readonly #backend = new RetryingOnce<PersistBase>(() => {
    const source = this.#source ?? getConfig().persistAdapter ?? defaultPersist;
    return Promise.resolve(typeof source === "function" ? source() : source);
  });
  readonly #inits = new Map<string, Promise<void>>();
  readonly #pending = new Map<string, ISignalRow | null>();
  readonly #queue = new KeyedQueue();

  /** @param persist the backend; default: `setConfig({ persistAdapter })`, else the file backend. */
  constructor(persist?: PersistSource) {
    this.#source = persist;
  }

  /** Reads the key's stored signal once and returns the signal currently open, or `null`. */
  async waitForInit(symbol: string, strategyName: string): Promise<ISignalRow | null> {
    const id = this.#checkKey(symbol, strategyName, "init");
    let init = this.#inits.get(id);
    if (init === undefined) {
      const started = this.#enqueue(id, async () => {
        const row = await this.#call("init", symbol, strategyName, async (backend) => {
          const stored = await backend.readSignalData(symbol, strategyName);
          return stored === null ? null : this.#checkRead(stored, backend, symbol, strategyName);
        });
        this.#pending.set(id, row);
      });
      init = started;
      this.#inits.set(id, started);
      started.catch(() => {
        if (this.#inits.get(id) === started) this.#inits.delete(id);
      });
    }
    await init;
    const row = this.#pending.get(id) ?? null;
    return row === null ? null : structuredClone(row);
  }

  /** Validates `row`, then stores it as the key's open signal. */
  async setPendingSignal(symbol: string, strategyName: string, row: ISignalRow): Promise<void> {
    const id = this.#checkKey(symbol, strategyName, "write");
    try {
      assertSignalRow(row, { backend: "adapter", operation: "write", symbol, strategyName });
    } catch (error) {
      throw this.#report(error, "write", symbol, strategyName);
    }
    const snapshot = structuredClone(row);
    await this.#enqueue(id, async () => {
      await this.#call("write", symbol, strategyName, (backend) =>
        backend.writeSignalData(symbol, strategyName, snapshot),
      );
      this.#pending.set(id, snapshot);
    });
  }

  /** Removes the key's open signal; removing a missing one succeeds. */
  async deletePendingSignal(symbol: string, strategyName: string): Promise<void> {
    const id = this.#checkKey(symbol, strategyName, "delete");
    await this.#enqueue(id, async () => {
      await this.#call("delete", symbol, strategyName, (backend) => backend.deleteSignalData(symbol, strategyName));
      this.#pending.set(id, null);
    });
  }

  #checkKey(symbol: string, strategyName: string, operation: PersistOperation): string {
    try {
      assertSignalKey(symbol, strategyName, { backend: "adapter", operation });
    } catch (error) {
      throw this.#report(error, operation, symbol, strategyName);
    }
    return signalKeyId(symbol, strategyName);
  }

  #checkRead(stored: unknown, backend: PersistBase, symbol: string, strategyName: string): ISignalRow {
    const context = { backend: backendName(backend), operation: "read", symbol, strategyName } as const;
    if (stored === undefined)
      throw new PersistError("backend returned undefined; a missing signal must be null", context);
    return checkStoredSignalRow(stored, context);
  }

  // After the previous operation on the same key, whatever order the backend would complete them in.
  #enqueue(id: string, operation: () => Promise<void>): Promise<void> {
    return this.#queue.run(id, operation);
  }

  async #call<T>(
    operation: PersistOperation,
    symbol: string,
    strategyName: string,
    run: (backend: PersistBase) => Promise<T>,
  ): Promise<T> {
    let backend: PersistBase | undefined;
    try {
      backend = await this.#backend.get();
      return await run(backend);
    } catch (error) {
      throw this.#report(error, operation, symbol, strategyName, backend);
    }
  }

  // A foreign error is named after the backend that threw it ("adapter" only before one exists).
  #report(
    error: unknown,
    operation: PersistOperation,
    symbol: string,
    strategyName: string,
    backend?: PersistBase,
  ): PersistError {
    const name = backend === undefined ? "adapter" : backendName(backend);
    const persistError =
      error instanceof PersistError
        ? error
        : new PersistError(errorMessage(error), { backend: name, operation, symbol, strategyName, cause: error });
    reportError(persistError);
    return persistError;
  }
}

function defaultPersist(): Promise<PersistBase> {
  return createPersist(process.env.PERSIST_URL ?? "file:./data");
}

function backendName(backend: PersistBase): string {
  return backend.name ?? backend.constructor?.name ?? "custom";
}
