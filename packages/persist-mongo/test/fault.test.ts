import { makeTrialRow } from "@persist-kit/contract";
import { type PersistError, PersistSignalAdapter } from "@persist-kit/core";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PersistMongo } from "../src/index.js";
import { uniqueDatabaseName } from "./helpers.js";
import { PrivateFerretDb } from "./private-ferretdb.js";

// Full runs take 50 trials per fault; CI takes PERSIST_KIT_FAULT_TRIALS (5 unless set).
const TRIALS = Number(process.env.PERSIST_KIT_FAULT_TRIALS ?? (process.env.CI ? 5 : 50));
const ADAPTER_TIMEOUT_MS = 500;
const TIMEOUTS = { serverSelectionTimeoutMS: 1_000, connectTimeoutMS: 1_000, socketTimeoutMS: 2_000 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let server: PrivateFerretDb;

beforeAll(async () => {
  server = await PrivateFerretDb.start();
});

afterAll(async () => {
  await server?.destroy();
});

/** Retries `operation` until it is acknowledged: the server may need a moment after a fault. */
async function untilAcknowledged(operation: () => Promise<void>, withinMs = 20_000): Promise<void> {
  const until = Date.now() + withinMs;
  for (;;) {
    try {
      return await operation();
    } catch (error) {
      if (Date.now() > until) throw error;
      await sleep(100);
    }
  }
}

interface FaultReport {
  trials: number;
  lateLandings: number;
  /** Trials whose rejected write was seen in the store after the fault healed: it really landed late. */
  landedAfterRejection: number;
  outcomes: Record<string, number>;
}

/**
 * Each trial: a write through a fenced adapter is rejected while `inject` holds the server; the
 * fault heals; a delete of the key is acknowledged. The key must stay deleted: a rejected write
 * never lands after a later acknowledged change.
 */
async function runFaultTrials(
  inject: () => Promise<void> | void,
  heal: () => Promise<void> | void,
  collectionName: string,
): Promise<FaultReport> {
  const databaseName = uniqueDatabaseName("fault");
  const persist = new PersistMongo(server.url, { databaseName, collectionName, ...TIMEOUTS });
  const adapter = new PersistSignalAdapter(persist, { timeoutMs: ADAPTER_TIMEOUT_MS });
  const raw = new MongoClient(server.url, { serverSelectionTimeoutMS: 10_000 });
  const report: FaultReport = { trials: 0, lateLandings: 0, landedAfterRejection: 0, outcomes: {} };
  try {
    for (let trial = 0; trial < TRIALS; trial++) {
      const strategyName = `fault-${trial}`;
      await untilAcknowledged(() => adapter.setPendingSignal("BTC/USDT", strategyName, makeTrialRow("before", trial)));
      await inject();
      let rejected: PersistError | undefined;
      try {
        await adapter.setPendingSignal("BTC/USDT", strategyName, makeTrialRow("rejected", trial));
      } catch (error) {
        rejected = error as PersistError;
      } finally {
        await heal();
      }
      expect(rejected?.name, `trial ${trial}: the write during the fault`).toBe("BackendUnavailableError");
      const outcome = rejected?.outcome ?? "none";
      report.outcomes[outcome] = (report.outcomes[outcome] ?? 0) + 1;
      await sleep(300);
      const seen = await persist.readSignalData("BTC/USDT", strategyName).catch(() => null);
      if (seen?.writer === "rejected") report.landedAfterRejection++;
      await untilAcknowledged(() => adapter.deletePendingSignal("BTC/USDT", strategyName));
      // Anything the driver or the server still holds lands (or is refused) in this time.
      await sleep(TIMEOUTS.socketTimeoutMS);
      const fresh = new PersistMongo(raw, { databaseName, collectionName });
      const stored = await untilAnswered(() => fresh.readSignalData("BTC/USDT", strategyName));
      if (stored !== null) report.lateLandings++;
      report.trials++;
    }
  } finally {
    await adapter.close();
    await persist.close().catch(() => {});
    await raw
      .db(databaseName)
      .dropDatabase()
      .catch(() => {});
    await raw.close();
  }
  return report;
}

async function untilAnswered<T>(operation: () => Promise<T>): Promise<T> {
  let result: T | undefined;
  await untilAcknowledged(async () => {
    result = await operation();
  });
  return result as T;
}

describe(`faults on a private FerretDB: 0 late-landing writes in ${TRIALS} trials per fault`, () => {
  it(
    "the server stopped with SIGSTOP while a write is on its way, then resumed",
    async () => {
      const report = await runFaultTrials(
        () => server.pause(),
        async () => {
          await sleep(ADAPTER_TIMEOUT_MS);
          server.resume();
        },
        "sigstop",
      );
      console.info(`mongo SIGSTOP: ${JSON.stringify(report)}`);
      expect(report.trials).toBe(TRIALS);
      expect(report.lateLandings).toBe(0);
    },
    TRIALS * 15_000 + 30_000,
  );

  it(
    "the server killed with SIGKILL while a write is on its way, then restarted",
    async () => {
      const report = await runFaultTrials(
        async () => {
          server.pause();
        },
        async () => {
          await sleep(ADAPTER_TIMEOUT_MS);
          await server.kill();
          await server.restart();
        },
        "sigkill",
      );
      console.info(`mongo kill -9: ${JSON.stringify(report)}`);
      expect(report.trials).toBe(TRIALS);
      expect(report.lateLandings).toBe(0);
    },
    TRIALS * 20_000 + 30_000,
  );
});
