import { describe, expect, it } from "vitest";
import type { Contender, Family, SignalStore } from "../src/model.js";
import { runFamily } from "../src/runner.js";
import { loadPackage, NotAvailableError } from "../src/stores.js";
import { benchKeys, benchRows } from "../src/workload.js";

function memoryStore(): SignalStore {
  const rows = new Map<string, unknown>();
  return {
    write: async (key, row) => {
      rows.set(key.id, structuredClone(row));
    },
    read: async (key) => rows.get(key.id) ?? null,
    delete: async (key) => {
      rows.delete(key.id);
    },
    close: async () => {},
  };
}

function family(contenders: Contender[]): Family {
  return {
    name: "test",
    description: "in memory",
    contenders,
    unavailable: [],
    passes: { sequential: 1, inFlight: 1 },
    close: async () => {},
  };
}

const keys = benchKeys(6);
const workload = { keys, rows: benchRows(keys), inFlight: [4], rounds: 3 };
const quiet = () => {};

describe("runFamily", () => {
  it("measures every operation of every mode in every round", async () => {
    const run = await runFamily(
      family([{ name: "map", role: "ours", description: "", open: async () => memoryStore() }]),
      workload,
      quiet,
    );
    expect(run.failed).toEqual([]);
    expect(run.measurements).toHaveLength(3 * 2 * 3);
    expect(new Set(run.measurements.map((entry) => entry.round))).toEqual(new Set([0, 1, 2]));
    expect(run.measurements.every((entry) => entry.count === keys.length)).toBe(true);
  });

  it("reports a contender that cannot open as not available and measures the others", async () => {
    const missing: Contender = {
      name: "missing",
      role: "ours",
      description: "",
      open: () => loadPackage("@persist-kit/no-such-backend"),
    };
    const present: Contender = { name: "map", role: "driver", description: "", open: async () => memoryStore() };
    const run = await runFamily(family([missing, present]), workload, quiet);
    expect(run.failed).toHaveLength(1);
    expect(run.failed[0]?.name).toBe("missing");
    expect(run.failed[0]?.reason).toMatch(/@persist-kit\/no-such-backend could not be loaded/);
    expect(run.measurements.every((entry) => entry.contender === "map")).toBe(true);
  });

  it("refuses a store that does not read back what it wrote", async () => {
    const forgetful: Contender = {
      name: "forgetful",
      role: "peer",
      description: "",
      open: async () => ({ ...memoryStore(), read: async () => null }),
    };
    const run = await runFamily(family([forgetful]), workload, quiet);
    expect(run.failed[0]?.reason).toMatch(/instead of the row written/);
    expect(run.measurements).toEqual([]);
  });

  it("drops a contender that fails in a round, with all its results", async () => {
    let writes = 0;
    const flaky: Contender = {
      name: "flaky",
      role: "peer",
      description: "",
      open: async () => {
        const store = memoryStore();
        return {
          ...store,
          write: async (key, row) => {
            if (++writes > 20) throw new Error("server gone");
            await store.write(key, row);
          },
        };
      },
    };
    const run = await runFamily(family([flaky]), workload, quiet);
    expect(run.failed[0]).toMatchObject({ name: "flaky" });
    expect(run.failed[0]?.reason).toMatch(/server gone/);
    expect(run.measurements).toEqual([]);
  });
});

describe("loadPackage", () => {
  it("turns a missing package into a NotAvailableError naming it", async () => {
    await expect(loadPackage("@persist-kit/no-such-backend")).rejects.toBeInstanceOf(NotAvailableError);
  });
});
