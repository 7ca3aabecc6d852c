import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { getMongoUrl } from "@persist-kit/tools-test-servers";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MongoRecordStore } from "../src/index.js";
import { uniqueDatabaseName } from "./helpers.js";

const RACERS = 8;
const WRITERS = 4;
const WRITES = Number(process.env.PERSIST_KIT_RACE_WRITES ?? 200);
const ROUNDS = Number(process.env.PERSIST_KIT_RACE_ROUNDS ?? 200);
const WORKER = fileURLToPath(new URL("./fixtures/race-worker.mjs", import.meta.url));
const databaseName = uniqueDatabaseName("race");
const key = { namespace: "race", parts: ["one", "key"] };

interface Racer {
  child: ChildProcess;
  next(): Promise<string>;
}

function startRacer(options: object, name: string): Racer {
  const child = spawn(process.execPath, [WORKER, JSON.stringify(options), name], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  return {
    child,
    async next() {
      const { value, done } = await lines.next();
      if (done) throw new Error(`racer ${name} exited (code ${child.exitCode})`);
      return value as string;
    },
  };
}

let url = "";
let raw: MongoClient;

beforeAll(async () => {
  url = await getMongoUrl();
  raw = await new MongoClient(url, { serverSelectionTimeoutMS: 10_000 }).connect();
});

afterAll(async () => {
  await raw?.db(databaseName).dropDatabase();
  await raw?.close();
});

describe("conditional changes racing from several processes", () => {
  it(`${RACERS} processes x ${ROUNDS} rounds on one key: exactly one winner per round, never a driver error`, async () => {
    const options = { url, databaseName, collectionName: "race" };
    const store = new MongoRecordStore(url, { databaseName, collectionName: "race" });
    const racers = Array.from({ length: RACERS }, (_, index) => startRacer(options, `racer-${index}`));
    const started = performance.now();
    try {
      for (const racer of racers) expect(await racer.next()).toBe("ready");
      for (let round = 0; round < ROUNDS; round++) {
        const before = (await store.read(key)).revision;
        // Plain revision conditions mostly; every third round a fence ({ below }), every tenth a delete.
        const kind = round % 10 === 9 ? "delete" : round % 3 === 2 ? "below" : "revision";
        for (const racer of racers) racer.child.stdin?.write(`${round} ${kind} ${before}\n`);
        const answers = await Promise.all(racers.map((racer) => racer.next()));
        const winners = answers.filter((answer) => answer === `${round} true ${before + 1}`);
        const losers = answers.filter((answer) => answer === `${round} false ${before + 1}`);
        expect({ round, winners: winners.length, losers: losers.length, answers }).toMatchObject({
          winners: 1,
          losers: RACERS - 1,
        });
        const after = await store.read(key);
        expect(after.revision).toBe(before + 1);
        expect(after.found).toBe(kind !== "delete");
      }
      // One document of the key stays, whatever was superseded has been collected (bounded).
      const left = await raw.db(databaseName).collection("race").countDocuments();
      expect(left).toBeLessThanOrEqual(3);
    } finally {
      for (const racer of racers) racer.child.stdin?.end("end\n");
      await Promise.all(racers.map((racer) => new Promise((resolve) => racer.child.once("exit", resolve))));
      await store.close();
      console.log(`race: ${RACERS} processes x ${ROUNDS} rounds took ${Math.round(performance.now() - started)} ms`);
    }
  }, 1_200_000);
});

describe("unconditional writes racing from several processes", () => {
  it(`${WRITERS} processes x ${WRITES} writes on one key: every write applies with a revision of its own, never an error`, async () => {
    const options = { url, databaseName, collectionName: "burst" };
    const store = new MongoRecordStore(url, options);
    const writers = Array.from({ length: WRITERS }, (_, index) => startRacer(options, `writer-${index}`));
    try {
      for (const writer of writers) expect(await writer.next()).toBe("ready");
      for (const writer of writers) writer.child.stdin?.write(`burst ${WRITES}\n`);
      const results = (await Promise.all(writers.map((writer) => writer.next()))).map(
        (line) => JSON.parse(line) as { revisions: number[]; errors: string[] },
      );
      const errors = results.flatMap((result) => result.errors);
      const revisions = results.flatMap((result) => result.revisions).sort((a, b) => a - b);
      console.log(`burst: ${errors.length} of ${WRITERS * WRITES} writes failed`);
      expect(errors).toEqual([]);
      expect(revisions).toEqual(Array.from({ length: WRITERS * WRITES }, (_, index) => index + 1));
      expect((await store.read(key)).revision).toBe(WRITERS * WRITES);
    } finally {
      for (const writer of writers) writer.child.stdin?.end("end\n");
      await Promise.all(writers.map((writer) => new Promise((resolve) => writer.child.once("exit", resolve))));
      await store.close();
    }
  }, 600_000);
});
