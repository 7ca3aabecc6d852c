import { fileURLToPath } from "node:url";
import { runPersistContract } from "@persist-kit/contract";
import { getMongoUrl } from "@persist-kit/tools-test-servers";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, it } from "vitest";
import { PersistMongo, type SignalDocument, signalDocumentId } from "../src/index.js";
import { closedPort, uniqueDatabaseName } from "./helpers.js";

const databaseName = uniqueDatabaseName("contract");
let url = "";
let raw: MongoClient;
let collections = 0;

function rawCollection(backend: PersistMongo) {
  return raw.db(backend.databaseName).collection<SignalDocument>(backend.collectionName);
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
    raw: {
      async read(backend, symbol, strategyName) {
        const document = await rawCollection(backend).findOne({ _id: signalDocumentId(symbol, strategyName) });
        return document === null ? null : document.signal;
      },
      async write(backend, symbol, strategyName, text) {
        await rawCollection(backend).updateOne(
          { _id: signalDocumentId(symbol, strategyName) },
          { $set: { strategyName, symbol, signal: text, updatedAt: new Date() } },
          { upsert: true },
        );
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
