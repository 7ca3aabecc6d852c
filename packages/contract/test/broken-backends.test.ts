import {
  type ISignalRow,
  MemoryRecordStore,
  PersistMemory,
  type PersistOptions,
  type RecordChange,
  type RecordCondition,
  type RecordKey,
  RecordSignalStore,
} from "@persist-kit/core";
import { describe, expect, it } from "vitest";
import { type ContractRunner, runPersistContract } from "../src/index.js";

interface CollectedTest {
  name: string;
  body: () => Promise<void> | void;
}

/** Runs the whole suite against `create` outside vitest and returns the names of the failed tests. */
async function failingPromises(create: (options: { ttlMs?: number }) => RecordSignalStore): Promise<string[]> {
  const tests: CollectedTest[] = [];
  const path: string[] = [];
  const runner: ContractRunner = {
    describe: (name, body) => {
      path.push(name);
      body();
      path.pop();
    },
    it: (name, body) => {
      tests.push({ name: [...path.slice(1), name].join(" > "), body });
    },
    beforeAll: () => {},
    afterAll: () => {},
  };
  runPersistContract(runner, { name: "broken", create, ttl: true }, { propertyRuns: 30 });
  const failed: string[] = [];
  for (const test of tests) {
    try {
      await test.body();
    } catch {
      failed.push(test.name);
    }
  }
  return failed;
}

/** Ignores the strategy: two strategies trading one symbol overwrite each other. */
class LeakingBackend extends PersistMemory {
  override writeSignalData(symbol: string, _strategyName: string, row: ISignalRow) {
    return super.writeSignalData(symbol, "shared", row);
  }
  override readSignalData(symbol: string, _strategyName: string) {
    return super.readSignalData(symbol, "shared");
  }
  override deleteSignalData(symbol: string, _strategyName: string) {
    return super.deleteSignalData(symbol, "shared");
  }
}

/** Answers undefined for a key it does not hold. */
class UndefinedForMissingBackend extends PersistMemory {
  override async readSignalData(symbol: string, strategyName: string) {
    return (await super.readSignalData(symbol, strategyName)) ?? (undefined as unknown as null);
  }
}

/** Keeps prices to 8 decimal places, as a DECIMAL(18,8) column would. */
class LossyBackend extends PersistMemory {
  override writeSignalData(symbol: string, strategyName: string, row: ISignalRow) {
    const round = (price: number) => Number(price.toFixed(8)) || 1e-8;
    return super.writeSignalData(symbol, strategyName, {
      ...row,
      priceOpen: round(row.priceOpen),
      priceTakeProfit: round(row.priceTakeProfit),
      priceStopLoss: round(row.priceStopLoss),
    });
  }
}

/** Throws when asked to delete a key it does not hold. */
class DeleteThrowsOnMissingBackend extends PersistMemory {
  override async deleteSignalData(symbol: string, strategyName: string) {
    if ((await this.readSignalData(symbol, strategyName)) === null) throw new Error("no such key");
    return super.deleteSignalData(symbol, strategyName);
  }
}

/** Decides nothing: a conditional write or delete always applies, as a plain SET would. */
class IgnoresConditionsStore extends MemoryRecordStore {
  protected override writeRecord(
    key: RecordKey,
    json: string,
    options: { condition: RecordCondition | undefined; ttlMs: number | undefined },
  ): Promise<RecordChange> {
    return super.writeRecord(key, json, { ...options, condition: undefined });
  }
}

/** Forgets a key's revision when it is deleted, as a plain DEL would. */
class ForgetsOnDeleteStore extends MemoryRecordStore {
  protected override async deleteRecord(key: RecordKey, condition: RecordCondition | undefined): Promise<RecordChange> {
    await super.deleteRecord(key, condition);
    await this.closeStore(); // every floor and record gone: revisions start again from 0
    return { applied: true, revision: 0 };
  }
}

const withStore = (records: MemoryRecordStore) => (options: PersistOptions) => new RecordSignalStore(records, options);

describe("the contract goes red against broken backends", () => {
  it("one whose conditions never fail fails the conditional-write promise", async () => {
    const failed = await failingPromises((options) => withStore(new IgnoresConditionsStore())(options));
    expect(failed).toContain(
      "12. conditional writes > { revision } and { below } apply exactly when the stored revision allows, on present and absent keys",
    );
    // Without conditions the adapter's fence holds nothing back: a late write lands.
    expect(failed).toContain(
      "11. a failed call never lands after a later acknowledged one > a write that timed out, applied after an acknowledged delete, is refused",
    );
  }, 60_000);

  it("one that forgets revisions on delete fails the revision promise", async () => {
    const failed = await failingPromises((options) => withStore(new ForgetsOnDeleteStore())(options));
    expect(failed).toContain("13. revisions only grow > an applied change raises the revision, a delete included");
  }, 60_000);

  it("a correct backend fails nothing, so every failure below is the defect's", async () => {
    expect(await failingPromises((options) => new PersistMemory(options))).toEqual([]);
  }, 60_000);

  it("one that leaks between keys fails the isolation promise", async () => {
    const failed = await failingPromises((options) => new LeakingBackend(options));
    expect(failed).toContain(
      "3. keys are isolated > names with : / { } $ . .. spaces and unicode are distinct keys that read back",
    );
  }, 60_000);

  it("one that returns undefined for a missing key fails the absent-key promise", async () => {
    const failed = await failingPromises((options) => new UndefinedForMissingBackend(options));
    expect(failed).toContain("2. absent, overwritten and deleted keys > a key never written reads null, not undefined");
  }, 60_000);

  it("one that loses precision fails the exact round trip", async () => {
    const failed = await failingPromises((options) => new LossyBackend(options));
    expect(failed).toContain(
      "1. a written row reads back exactly > arbitrary rows read back with every number bit-identical",
    );
  }, 60_000);

  it("one whose delete throws on a missing key fails the idempotent-delete promise", async () => {
    const failed = await failingPromises((options) => new DeleteThrowsOnMissingBackend(options));
    expect(failed).toContain("2. absent, overwritten and deleted keys > deleting a key never written succeeds");
    expect(failed).toContain(
      "2. absent, overwritten and deleted keys > a deleted key reads null, and deleting it again succeeds",
    );
  }, 60_000);
});
