import { makeSignalRow, makeTrialRow } from "@persist-kit/contract";
import { BackendUnavailableError, type ISignalRow, type PersistBase } from "@persist-kit/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PersistPostgres, PostgresRecordStore } from "../src/index.js";
import { PrivatePostgres } from "./private-postgres.js";

const TIMEOUTS = { connectionTimeoutMillis: 2_000, statementTimeoutMillis: 2_000, queryTimeoutMillis: 3_000 };
// The slowest way an operation may fail while the server is down: a connection timeout, plus slack.
const FAIL_WITHIN_MS = TIMEOUTS.queryTimeoutMillis + 1_000;
const DURABLE_ROWS = 200;

let server: PrivatePostgres | undefined;

beforeAll(async () => {
  server = await PrivatePostgres.start();
}, 120_000);

afterAll(async () => {
  await server?.destroy();
}, 120_000);

function privateServer(): PrivatePostgres {
  if (server === undefined) throw new Error("the private server did not start");
  return server;
}

async function settings(url: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query(
      "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')",
    );
    return Object.fromEntries(result.rows.map((row) => [row.name, row.setting]));
  } finally {
    await client.end();
  }
}

async function expectUnavailableFast(what: string, operation: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  const outcome = await operation().then(
    () => undefined,
    (error: unknown) => error,
  );
  const elapsed = performance.now() - started;
  expect(outcome, `${what} should reject`).toBeInstanceOf(BackendUnavailableError);
  expect(elapsed, `${what} took ${Math.round(elapsed)} ms`).toBeLessThan(FAIL_WITHIN_MS);
}

async function collectKeys(persist: PersistBase): Promise<number> {
  let count = 0;
  for await (const _ of persist.keys?.() ?? []) count++;
  return count;
}

/** Writes one key as fast as it can until a write fails; returns the last acknowledged sequence. */
function startWriteLoop(persist: PersistPostgres) {
  const state = { acknowledged: 0, failure: undefined as unknown };
  const done = (async () => {
    for (let sequence = 1; ; sequence++) {
      try {
        await persist.writeSignalData("BTC/USDT", "in-flight", makeTrialRow("loop", sequence));
        state.acknowledged = sequence;
      } catch (error) {
        state.failure = error;
        return;
      }
    }
  })();
  return { state, done };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("a private PostgreSQL stopped in immediate mode and started again", () => {
  it("keeps every acknowledged write; fails fast while down; the same instance works afterwards", async () => {
    const postgres = privateServer();
    expect(await settings(postgres.url)).toEqual({ fsync: "on", synchronous_commit: "on", full_page_writes: "on" });
    const persist = new PersistPostgres({ connectionString: postgres.url, ...TIMEOUTS });
    // Never used before the stop: its first operation (creating its table) fails, and is retried later.
    const untouched = new PersistPostgres({ connectionString: postgres.url, table: "made_after_restart", ...TIMEOUTS });
    try {
      for (let index = 0; index < DURABLE_ROWS; index++) {
        await persist.writeSignalData(`COIN${index}/USDT`, "durable", makeSignalRow(index));
      }
      const loop = startWriteLoop(persist);
      await waitFor(() => loop.state.acknowledged >= 50, 30_000);
      await postgres.stopImmediately();
      await loop.done;
      expect(loop.state.failure, "the write cut off by the stop").toBeInstanceOf(BackendUnavailableError);

      const row = makeSignalRow(1);
      await expectUnavailableFast("write", () => persist.writeSignalData("BTC/USDT", "down", row));
      await expectUnavailableFast("read", () => persist.readSignalData("COIN1/USDT", "durable"));
      await expectUnavailableFast("delete", () => persist.deleteSignalData("COIN1/USDT", "durable"));
      await expectUnavailableFast("writeMany", () =>
        persist.writeMany([{ symbol: "BTC/USDT", strategyName: "down", row }]),
      );
      await expectUnavailableFast("keys", () => collectKeys(persist));
      await expectUnavailableFast("ping", () => persist.ping());
      await expectUnavailableFast("first operation of a new instance", () =>
        untouched.readSignalData("BTC/USDT", "down"),
      );

      await postgres.startAgain();
      for (let index = 0; index < DURABLE_ROWS; index++) {
        expect(await persist.readSignalData(`COIN${index}/USDT`, "durable")).toEqual(makeSignalRow(index));
      }
      const survivor = (await persist.readSignalData("BTC/USDT", "in-flight")) as ISignalRow;
      const { acknowledged } = loop.state;
      // The write cut off by the stop may or may not have committed; nothing older is acceptable.
      expect([acknowledged, acknowledged + 1]).toContain(survivor.sequence);
      expect(survivor).toEqual(makeTrialRow("loop", survivor.sequence as number));
      expect(await persist.readSignalData("BTC/USDT", "down")).toBeNull();

      await persist.writeSignalData("BTC/USDT", "after", makeSignalRow(2));
      expect(await persist.readSignalData("BTC/USDT", "after")).toEqual(makeSignalRow(2));
      await persist.deleteSignalData("BTC/USDT", "after");
      expect(await persist.readSignalData("BTC/USDT", "after")).toBeNull();
      expect(await collectKeys(persist)).toBe(DURABLE_ROWS + 1);
      await untouched.writeSignalData("BTC/USDT", "after", makeSignalRow(3));
      expect(await untouched.readSignalData("BTC/USDT", "after")).toEqual(makeSignalRow(3));
    } finally {
      await persist.close();
      await untouched.close();
    }
  });
});

describe("revisions across a server crash (stop -m immediate) and restart", () => {
  it("every key's revision, deleted keys and their floors included, is kept; the next change goes above it", async () => {
    const postgres = privateServer();
    const store = new PostgresRecordStore({ connectionString: postgres.url, table: "revisions", ...TIMEOUTS });
    try {
      const keys = Array.from({ length: 6 }, (_, index) => ({
        namespace: "risk",
        parts: [`g${index % 2}`, `k${index}`],
      }));
      const expected: Array<{ key: (typeof keys)[number]; revision: number }> = [];
      for (const [index, key] of keys.entries()) {
        for (let round = 0; round <= index; round++) await store.write(key, `${round}`);
        const change =
          index % 3 === 0
            ? await store.delete(key)
            : await store.write(key, '"last"', { condition: { below: 50 + index } });
        expected.push({ key, revision: change.revision });
      }
      const before = await Promise.all(keys.map((key) => store.read(key)));
      await postgres.stopImmediately();
      await postgres.startAgain();
      const after = await Promise.all(keys.map((key) => store.read(key)));
      expect(after).toEqual(before);
      for (const [index, { key, revision }] of expected.entries()) {
        expect(after[index]?.revision, JSON.stringify(key.parts)).toBeGreaterThanOrEqual(revision);
        const next = await store.write(key, '"after"');
        expect(next.revision).toBeGreaterThan(after[index]?.revision as number);
      }
    } finally {
      await store.close();
    }
  });
});
