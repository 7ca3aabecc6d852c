import assert from "node:assert/strict";
import type { ISignalRow, PersistBase, RecordStore, SignalKey } from "@persist-kit/core";
import type { ProcessTarget } from "./processes.js";
import type { ContractInitializer, ContractOptions, ContractRunner } from "./types.js";

/** The symbol most promises write under. */
export const SYMBOL = "BTC/USDT";

/** What every promise file gets: the runner, the initializer, the options and shared helpers. */
export interface SuiteContext<B extends PersistBase> {
  runner: ContractRunner;
  initializer: ContractInitializer<B>;
  options: ContractOptions;
  /** Timeout of an ordinary test, in ms. */
  testTimeout: number;
  /** A strategy name no other test of this suite uses. */
  nextStrategy(): string;
  /** Runs `body` with a backend made by `create()`, and releases it afterwards. */
  withBackend(body: (backend: B) => Promise<void>, createOptions?: { ttlMs?: number }): Promise<void>;
  /** Reads the key back, through the backend and (with `raw`) directly, and compares with `expected`. */
  assertStored(backend: B, symbol: string, strategyName: string, expected: ISignalRow | null): Promise<void>;
  /** The process target of a key, for the multi-process promises (needs `worker`). */
  targetOf(backend: B, strategyName: string): ProcessTarget;
}

/** The shared helpers of one suite. */
export function suiteContext<B extends PersistBase>(
  runner: ContractRunner,
  initializer: ContractInitializer<B>,
  options: ContractOptions,
): SuiteContext<B> {
  let strategyCounter = 0;
  const withBackend: SuiteContext<B>["withBackend"] = async (body, createOptions = {}) => {
    const backend = await initializer.create(createOptions);
    try {
      await body(backend);
    } finally {
      await (initializer.destroy ? initializer.destroy(backend) : backend.close?.());
    }
  };
  return {
    runner,
    initializer,
    options,
    testTimeout: initializer.timeouts?.test ?? 30_000,
    nextStrategy: () => `contract-${++strategyCounter}`,
    withBackend,
    async assertStored(backend, symbol, strategyName, expected) {
      assert.deepStrictEqual(await backend.readSignalData(symbol, strategyName), expected, "read back");
      if (initializer.raw === undefined) return;
      const text = await initializer.raw.read(backend, symbol, strategyName);
      assert.deepStrictEqual(text === null ? null : JSON.parse(text), expected, "what the store really holds");
    },
    targetOf(backend, strategyName) {
      const worker = initializer.worker;
      if (worker === undefined) throw new Error("this promise needs the initializer's worker");
      return { worker, options: worker.options(backend), symbol: SYMBOL, strategyName };
    },
  };
}

/** Awaits `promise` and checks it rejects with an error of class `name`; returns the error. */
export async function rejectsNamed(promise: Promise<unknown>, name: string, what: string): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Error, `${what}: rejected with a non-Error ${String(error)}`);
    assert.equal(error.name, name, `${what}: expected ${name}, got ${error.name}: ${error.message}`);
    return error;
  }
  assert.fail(`${what}: expected ${name}, but it resolved`);
}

/** Every key `keys()` lists; empty when the backend has no `keys()`. */
export async function collectKeys(backend: PersistBase): Promise<SignalKey[]> {
  const keys: SignalKey[] = [];
  if (backend.keys === undefined) return keys;
  for await (const key of backend.keys()) keys.push(key);
  return keys;
}

/** A key as one comparable string. */
export const keyText = (key: SignalKey) => JSON.stringify([key.strategyName, key.symbol]);

/** The record store below a backend, when it is built on one (every bundled backend is). */
export function recordsOf(backend: PersistBase): RecordStore | undefined {
  const records = (backend as { records?: unknown }).records;
  if (typeof records !== "object" || records === null) return undefined;
  return typeof (records as RecordStore).write === "function" ? (records as RecordStore) : undefined;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
