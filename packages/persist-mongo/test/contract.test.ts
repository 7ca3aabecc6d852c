import { fileURLToPath } from "node:url";
import { runPersistContract } from "@persist-kit/contract";
import { signalRecordKey } from "@persist-kit/core";
import { getMongoUrl } from "@persist-kit/tools-test-servers";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, it } from "vitest";
import { keyDocumentRange, PersistMongo, type RecordDocument, recordDocumentId } from "../src/index.js";
import { closedPort, uniqueDatabaseName } from "./helpers.js";

const databaseName = uniqueDatabaseName("contract");
let url = "";
let raw: MongoClient;
let collections = 0;

function rawCollection(backend: PersistMongo) {
  return raw.db(backend.databaseName).collection<RecordDocument>(backend.collectionName);
}

async function rawHead(backend: PersistMongo, symbol: string, strategyName: string): Promise<RecordDocument | null> {
  const range = keyDocumentRange(signalRecordKey(symbol, strategyName));
  const [head] = await rawCollection(backend).find({ _id: range }).sort({ _id: -1 }).limit(1).toArray();
  return head ?? null;
}

runPersistContract<PersistMongo>(
  { describe, it, beforeAll, afterAll },
  {
    name: "mongo",
    async setup() {
      url = await getMongoUrl();
      raw = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
      await raw.connect();
    },
    // A fresh collection per backend; the whole database is dropped at the end.
    create: ({ ttlMs }) =>
      new PersistMongo(url, {
        databaseName,
        collectionName: `signals_${++collections}`,
        ttlMs,
        // The TTL tests run against FerretDB, which has no TTL indexes; that warning is expected.
        onWarning: () => {},
      }),
    async teardown() {
      await raw.db(databaseName).dropDatabase();
      await raw.close();
    },
    // The key's state is its document with the highest _id: read it, or insert a change above it.
    raw: {
      async read(backend, symbol, strategyName) {
        const head = await rawHead(backend, symbol, strategyName);
        return head === null || head.deleted === true ? null : (head.value ?? null);
      },
      async write(backend, symbol, strategyName, text) {
        const key = signalRecordKey(symbol, strategyName);
        const head = await rawHead(backend, symbol, strategyName);
        const base = head?.revision ?? 0;
        await rawCollection(backend).insertOne({
          _id: recordDocumentId(key, base),
          v: 1,
          namespace: key.namespace,
          parts: [...key.parts],
          base,
          revision: base + 1,
          change: `raw-${base}`,
          ancestors: head === null ? [] : [{ change: head.change, revision: head.revision }],
          value: text,
        });
      },
    },
    worker: {
      module: fileURLToPath(new URL("./fixtures/mongo-worker.mjs", import.meta.url)),
      options: (backend) => ({ url, databaseName: backend.databaseName, collectionName: backend.collectionName }),
    },
    ttl: true,
    unavailable: {
      async create() {
        const port = await closedPort();
        return new PersistMongo(`mongodb://127.0.0.1:${port}/`, {
          serverSelectionTimeoutMS: 1_000,
          connectTimeoutMS: 1_000,
          socketTimeoutMS: 2_000,
        });
      },
      timeoutMs: 2_000,
    },
  },
  { killTrials: 100 },
);
