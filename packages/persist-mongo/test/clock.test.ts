import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { getMongoUrl } from "@persist-kit/tools-test-servers";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyDocumentRange, MongoRecordStore, type RecordDocument } from "../src/index.js";
import { uniqueDatabaseName } from "./helpers.js";

const WORKER = fileURLToPath(new URL("./fixtures/skewed-clock-worker.mjs", import.meta.url));
const TEN_MINUTES = 10 * 60_000;
const databaseName = uniqueDatabaseName("clock");
let url = "";
let raw: MongoClient;
let collections = 0;
const opened: { close(): Promise<void> }[] = [];

/** A record store in a child process whose wall clock is `shiftMs` off, and can be moved later. */
interface SkewedProcess {
  ask(command: object): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

async function startSkewed(collectionName: string, shiftMs: number): Promise<SkewedProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [WORKER, JSON.stringify({ url, databaseName, collectionName }), String(shiftMs)],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`the skewed process exited (code ${child.exitCode})`);
    return value as string;
  };
  expect(await next()).toBe("ready");
  const skewed = {
    async ask(command: object) {
      child.stdin?.write(`${JSON.stringify(command)}\n`);
      return JSON.parse(await next()) as Record<string, unknown>;
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.stdin?.end();
      await exited;
    },
  };
  opened.push(skewed);
  return skewed;
}

function setup() {
  const collectionName = `clock_${++collections}`;
  const reader = new MongoRecordStore(url, { databaseName, collectionName });
  opened.push(reader);
  return { collectionName, reader };
}

const key = (part: string) => ({ namespace: "clock", parts: [part] });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function storedExpiry(collectionName: string, part: string): Promise<number> {
  const [document] = await raw
    .db(databaseName)
    .collection<RecordDocument>(collectionName)
    .find({ _id: keyDocumentRange(key(part)) })
    .sort({ _id: -1 })
    .limit(1)
    .toArray();
  return document?.expiresAt?.getTime() ?? Number.NaN;
}

async function serverNow(): Promise<number> {
  const { localTime } = await raw.db("admin").command({ hello: 1 });
  return (localTime as Date).getTime();
}

beforeAll(async () => {
  url = await getMongoUrl();
  raw = await new MongoClient(url, { serverSelectionTimeoutMS: 10_000 }).connect();
});

afterAll(async () => {
  await Promise.all(opened.map((each) => each.close()));
  await raw?.db(databaseName).dropDatabase();
  await raw?.close();
});

describe("expiry is decided by the server's clock, never by the writer's or the reader's", () => {
  for (const [name, shiftMs] of [
    ["10 minutes behind", -TEN_MINUTES],
    ["10 minutes ahead", TEN_MINUTES],
  ] as const) {
    it(`a writer whose clock is ${name} writes rows that a correctly clocked reader sees live for their TTL, and expired after it`, async () => {
      const { collectionName, reader } = setup();
      const writer = await startSkewed(collectionName, shiftMs);
      const before = await serverNow();
      expect(await writer.ask({ op: "write", part: "long", ttlMs: 60_000 })).toEqual({ applied: true, revision: 1 });
      expect(await writer.ask({ op: "write", part: "short", ttlMs: 500 })).toEqual({ applied: true, revision: 1 });
      const after = await serverNow();
      const expiry = await storedExpiry(collectionName, "long");
      // Half a round trip of slack either side of the server's own clock; 10 minutes off would be far outside.
      expect(expiry).toBeGreaterThanOrEqual(before + 60_000 - 1_000);
      expect(expiry).toBeLessThanOrEqual(after + 60_000 + 1_000);
      expect(await reader.read(key("long"))).toEqual({ found: true, json: '"v"', revision: 1 });
      // Why 1500 ms: the 500 ms TTL plus the slack of the offset measurement, with room for a slow machine.
      await sleep(1_500);
      expect(await reader.read(key("short"))).toEqual({ found: false, revision: 1 });
      expect(await reader.read(key("long"))).toEqual({ found: true, json: '"v"', revision: 1 });
    });

    it(`a correctly clocked writer's rows read live, then expired, in a reader whose clock is ${name}`, async () => {
      const { collectionName, reader: writer } = setup();
      const reader = await startSkewed(collectionName, shiftMs);
      await writer.write(key("long"), '"v"', { ttlMs: 60_000 });
      await writer.write(key("short"), '"v"', { ttlMs: 500 });
      expect(await reader.ask({ op: "read", part: "long" })).toEqual({ found: true, json: '"v"', revision: 1 });
      await sleep(1_500);
      expect(await reader.ask({ op: "read", part: "short" })).toEqual({ found: false, revision: 1 });
      expect(await reader.ask({ op: "read", part: "long" })).toEqual({ found: true, json: '"v"', revision: 1 });
    });
  }

  it("a writer whose clock steps back 10 minutes after its first write (an NTP step) still writes rows that live for their TTL", async () => {
    const { collectionName, reader } = setup();
    const writer = await startSkewed(collectionName, 0);
    // The first TTL write makes the store read the server's clock; the step comes after that.
    await writer.ask({ op: "write", part: "first", ttlMs: 60_000 });
    await writer.ask({ op: "shift", ms: -TEN_MINUTES });
    const before = await serverNow();
    expect(await writer.ask({ op: "write", part: "after-step", ttlMs: 60_000 })).toEqual({
      applied: true,
      revision: 1,
    });
    expect(await storedExpiry(collectionName, "after-step")).toBeGreaterThanOrEqual(before + 60_000 - 1_000);
    expect(await reader.read(key("after-step"))).toEqual({ found: true, json: '"v"', revision: 1 });
  });

  it("a reader whose clock steps forward 10 minutes after its first read still sees rows live until their TTL", async () => {
    const { collectionName, reader: writer } = setup();
    const reader = await startSkewed(collectionName, 0);
    await writer.write(key("a"), '"v"', { ttlMs: 60_000 });
    expect(await reader.ask({ op: "read", part: "a" })).toEqual({ found: true, json: '"v"', revision: 1 });
    await reader.ask({ op: "shift", ms: TEN_MINUTES });
    expect(await reader.ask({ op: "read", part: "a" })).toEqual({ found: true, json: '"v"', revision: 1 });
  });

  it("a reader whose clock steps back 10 minutes after its first read sees rows expire on time, not 10 minutes late", async () => {
    const { collectionName, reader: writer } = setup();
    const reader = await startSkewed(collectionName, 0);
    await writer.write(key("a"), '"v"', { ttlMs: 500 });
    expect(await reader.ask({ op: "read", part: "a" })).toEqual({ found: true, json: '"v"', revision: 1 });
    await reader.ask({ op: "shift", ms: -TEN_MINUTES });
    await sleep(1_500);
    expect(await reader.ask({ op: "read", part: "a" })).toEqual({ found: false, revision: 1 });
  });

  it("the server's clock is read once for many TTL writes and reads, not once per change", async () => {
    const client = new MongoClient(url, { monitorCommands: true });
    let hellos = 0;
    client.on("commandStarted", (event) => {
      if (event.commandName === "hello") hellos++;
    });
    try {
      const store = new MongoRecordStore(client, { databaseName, collectionName: `clock_${++collections}` });
      for (let write = 0; write < 20; write++) await store.write(key(`k${write}`), '"v"', { ttlMs: 60_000 });
      for (let write = 0; write < 20; write++) expect((await store.read(key(`k${write}`))).found).toBe(true);
      await store.close();
      expect(hellos).toBe(1);
    } finally {
      await client.close();
    }
  });
});
