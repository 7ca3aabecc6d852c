// Conditional writes and deletes from several processes on one key: exactly one winner per round.
// writeMany from two processes on the same keys in opposite orders: no call fails.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { RecordChange, RecordCondition } from "@persist-kit/core";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresRecordStore } from "../src/index.js";
import { adminPool, dropSchemas, testDatabaseUrl, uniqueName } from "./postgres-test-env.js";

const RACER = fileURLToPath(new URL("./fixtures/record-racer.mjs", import.meta.url));
const BATCH_RACER = fileURLToPath(new URL("./fixtures/write-many-racer.mjs", import.meta.url));
const PROCESSES = 8;
const ROUNDS = Number(process.env.PERSIST_KIT_RACE_ROUNDS) || 200;
const schema = uniqueName("pk_race");
let url = "";
let admin: pg.Pool | undefined;

beforeAll(async () => {
  url = await testDatabaseUrl();
  admin = adminPool(url);
});

afterAll(async () => {
  if (admin === undefined) return;
  await dropSchemas(admin, [schema]);
  await admin.end();
});

interface Racer {
  child: ChildProcess;
  ask(request: object): Promise<{ result?: RecordChange; error?: string }>;
}

async function startRacer(options: object): Promise<Racer> {
  const child = spawn(process.execPath, [RACER, JSON.stringify(options)], { stdio: ["pipe", "pipe", "inherit"] });
  const lines: Interface = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const waiting: Array<(line: string) => void> = [];
  lines.on("line", (line) => waiting.shift()?.(line));
  const next = () => new Promise<string>((resolve) => waiting.push(resolve));
  expect(await next()).toBe("ready");
  return {
    child,
    async ask(request) {
      const answer = next();
      child.stdin?.write(`${JSON.stringify(request)}\n`);
      return JSON.parse(await answer);
    },
  };
}

// Each kind races from the key's state the previous round left: absent after a delete, so
// conditional writes and deletes race on a live key and on an absent one (its group's floor).
const KINDS = [
  "write-at",
  "write-at",
  "write-below",
  "delete-at",
  "delete-at",
  "write-at",
  "delete-below",
  "write-below",
] as const;

describe(`${PROCESSES} processes racing conditional changes on one key`, () => {
  it(
    `exactly one winner in each of ${ROUNDS} rounds, and it is what is stored`,
    async () => {
      const options = { connectionString: url, schema };
      const store = new PostgresRecordStore(options);
      await store.ping(); // the tables exist before the racers start, so the race is on the key
      const racers = await Promise.all(Array.from({ length: PROCESSES }, () => startRacer(options)));
      const key = { namespace: "race", parts: ["strategy", "BTC/USDT"] };
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const before = await store.read(key);
          const kind = KINDS[round % KINDS.length] as (typeof KINDS)[number];
          const condition: RecordCondition = kind.endsWith("below")
            ? { below: before.revision + 2 }
            : { revision: before.revision };
          const op = kind.startsWith("delete") ? "delete" : "write";
          const answers = await Promise.all(
            racers.map((racer, index) => racer.ask({ op, key, json: JSON.stringify({ round, index }), condition })),
          );
          expect(
            answers.filter((answer) => answer.error !== undefined),
            `round ${round}`,
          ).toEqual([]);
          const winners = answers.flatMap((answer, index) => (answer.result?.applied ? [index] : []));
          expect(winners, `round ${round} ${kind}`).toHaveLength(1);
          const winner = winners[0] as number;
          const after = await store.read(key);
          expect(after.revision, `round ${round}`).toBe(answers[winner]?.result?.revision);
          expect(after.revision).toBeGreaterThan(before.revision);
          if (op === "write")
            expect(after).toMatchObject({ found: true, json: JSON.stringify({ round, index: winner }) });
          else expect(after.found).toBe(false);
          for (const answer of answers) expect(answer.result?.revision).toBeGreaterThanOrEqual(before.revision);
        }
      } finally {
        for (const racer of racers) racer.child.stdin?.end();
        await Promise.all(racers.map((racer) => new Promise((resolve) => racer.child.once("exit", resolve))));
        await store.close();
      }
    },
    60_000 + ROUNDS * 1_000,
  );
});

interface BatchRacer {
  start(): void;
  result: Promise<{ failed: number; failures: Record<string, number> }>;
  exited: Promise<unknown>;
}

async function startBatchRacer(request: object): Promise<BatchRacer> {
  const child = spawn(process.execPath, [BATCH_RACER, JSON.stringify(request)], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  expect((await lines.next()).value).toBe("ready");
  return {
    start: () => child.stdin?.end("go\n"),
    result: lines.next().then(({ value }) => JSON.parse(value)),
    exited,
  };
}

describe("writeMany from two processes on the same 10 keys in opposite orders", () => {
  const CALLS = 200; // per process: 400 in all
  const keys = Array.from({ length: 10 }, (_, index) => ({
    namespace: "batch",
    parts: [`s${index % 3}`, `k${index}`],
  }));

  // The second case is what `ALTER ROLE bot SET default_transaction_isolation = 'serializable'`
  // gives every session: the batches then fail with serialization failures (40001) unless retried.
  it.each([
    ["the server's default isolation", {}],
    [
      "sessions whose transactions default to serializable",
      { options: "-c default_transaction_isolation=serializable" },
    ],
  ])("%s: none of the 400 calls fails", async (_, poolConfig) => {
    const options = { connectionString: url, schema, table: uniqueName("batches"), poolConfig };
    const racers = await Promise.all([
      startBatchRacer({ options, keys, calls: CALLS }),
      startBatchRacer({ options, keys: [...keys].reverse(), calls: CALLS }),
    ]);
    try {
      for (const racer of racers) racer.start();
      const results = await Promise.all(racers.map((racer) => racer.result));
      expect(results).toEqual([
        { failed: 0, failures: {} },
        { failed: 0, failures: {} },
      ]);
    } finally {
      await Promise.all(racers.map((racer) => racer.exited));
    }
  });
});
