import { assertSignalKey, type SignalKey, signalKeyId } from "./key.js";
import type { PersistBase, PersistOptions, SignalEntry } from "./persist-base.js";
import { assertSignalRow, type ISignalRow, parseSignalRow, serializeSignalRow } from "./signal.js";
import { assertTtl, expiresAt } from "./ttl.js";

const BACKEND = "memory";

interface StoredSignal {
  key: SignalKey;
  json: string;
  expiresAt: number | undefined;
}

/**
 * Keeps signals in this process's memory, serialized as JSON like every durable backend, so a row
 * read back is a copy with the same numbers. For backtests and tests: nothing survives the process.
 *
 * @example
 * const persist = new PersistMemory();
 * await persist.writeSignalData("BTC/USDT", "momentum", row);
 */
export class PersistMemory implements PersistBase {
  readonly name = BACKEND;
  readonly #signals = new Map<string, StoredSignal>();
  readonly #ttlMs: number | undefined;

  constructor(options: PersistOptions = {}) {
    this.#ttlMs = assertTtl(options.ttlMs, BACKEND);
  }

  async writeSignalData(symbol: string, strategyName: string, row: ISignalRow): Promise<void> {
    const context = { backend: BACKEND, operation: "write", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    assertSignalRow(row, context);
    this.#store(symbol, strategyName, row);
  }

  async readSignalData(symbol: string, strategyName: string): Promise<ISignalRow | null> {
    const context = { backend: BACKEND, operation: "read", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    const stored = this.#signals.get(signalKeyId(symbol, strategyName));
    if (stored === undefined || isExpired(stored)) return null;
    return parseSignalRow(stored.json, context);
  }

  async deleteSignalData(symbol: string, strategyName: string): Promise<void> {
    assertSignalKey(symbol, strategyName, { backend: BACKEND, operation: "delete" });
    this.#signals.delete(signalKeyId(symbol, strategyName));
  }

  async *keys(): AsyncIterable<SignalKey> {
    for (const stored of [...this.#signals.values()]) {
      if (!isExpired(stored)) yield { ...stored.key };
    }
  }

  async writeMany(entries: readonly SignalEntry[]): Promise<void> {
    for (const { symbol, strategyName, row } of entries) {
      const context = { backend: BACKEND, operation: "writeMany", symbol, strategyName } as const;
      assertSignalKey(symbol, strategyName, context);
      assertSignalRow(row, context);
    }
    for (const { symbol, strategyName, row } of entries) this.#store(symbol, strategyName, row);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.#signals.clear();
  }

  #store(symbol: string, strategyName: string, row: ISignalRow): void {
    const json = serializeSignalRow(row);
    this.#signals.set(signalKeyId(symbol, strategyName), {
      key: { symbol, strategyName },
      json,
      expiresAt: expiresAt(this.#ttlMs),
    });
  }
}

function isExpired(stored: StoredSignal): boolean {
  return stored.expiresAt !== undefined && stored.expiresAt <= Date.now();
}
