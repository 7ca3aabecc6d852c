// The mongo family: persist-mongo against the mongodb driver sending the same upsert / find /
// delete with the same write concern, and keyv with @keyv/mongo.
import KeyvMongo from "@keyv/mongo";
import type { PersistBase } from "@persist-kit/core";
import Keyv from "keyv";
import { MongoClient, type WriteConcernSettings } from "mongodb";
import type { Contender, Family, SignalStore } from "../model.js";
import { keyvStore, loadPackage, persistStore, serverUrl } from "../stores.js";
import { DRIVER_GOALS, PEER_GOALS, RAW_DRIVER_NOTE } from "../targets.js";
import type { FamilySetup } from "./setup.js";

/** What the harness uses of @persist-kit/persist-mongo (typed here: see loadPackage). */
interface PersistMongoModule {
  PersistMongo: new (url: string, options: { databaseName: string; collectionName: string }) => PersistBase;
}

// persist-mongo's default write concern: acknowledged by a majority, in the on-disk journal.
const WRITE_CONCERN: WriteConcernSettings = { w: "majority", journal: true };

interface SignalDocument {
  _id: string;
  strategyName: string;
  symbol: string;
  signal: string;
  updatedAt: Date;
  expiresAt?: Date;
}

/** The mongo family; every contender gets its own collection in this run's database. */
export async function mongoFamily(setup: FamilySetup): Promise<Family> {
  const url = serverUrl("MONGO_URL");
  const databaseName = `persist_kit_bench_${setup.tag}`;
  const admin = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
  await admin.connect();
  const server = describeServer(await admin.db("admin").command({ buildInfo: 1 }));
  const contenders: Contender[] = [
    {
      name: "persist-mongo",
      role: "ours",
      description: "PersistMongo: updateOne upsert / findOne / deleteOne, w: majority, j: true",
      open: async () => {
        const { PersistMongo } = await loadPackage<PersistMongoModule>("@persist-kit/persist-mongo");
        return persistStore(new PersistMongo(url, { databaseName, collectionName: "ours" }));
      },
    },
    {
      name: "mongodb driver",
      role: "driver",
      description:
        "the mongodb driver: the same document, updateOne upsert / findOne / deleteOne, w: majority, j: true",
      goals: DRIVER_GOALS,
      inFlightNote: RAW_DRIVER_NOTE,
      open: () => driverStore(url, databaseName, "driver"),
    },
    {
      name: "keyv mongo",
      role: "peer",
      description: "keyv with @keyv/mongo",
      goals: PEER_GOALS,
      inFlightNote: "a thin layer over the mongodb driver that checks nothing per call",
      open: async () => {
        const store = new KeyvMongo(url, { db: databaseName, collection: "keyv" });
        // It connects and creates its indexes from the constructor, and reports a failure only as
        // an 'error' event (its connect promise then never settles).
        const failed = new Promise<never>((_, reject) => store.once("error", reject));
        await Promise.race([store.connect, failed]);
        const keyv = new Keyv({ store });
        return keyvStore(keyv);
      },
    },
  ];
  return {
    name: "mongo",
    description: server,
    contenders,
    unavailable: [],
    passes: setup.passes,
    close: async () => {
      try {
        await admin.db(databaseName).dropDatabase();
      } finally {
        await admin.close();
      }
    },
  };
}

// FerretDB answers buildInfo with the MongoDB version it speaks and no version of its own when
// embedded; the services' binary path names it.
function describeServer(buildInfo: { version?: string; ferretdbVersion?: string }): string {
  if (buildInfo.ferretdbVersion === undefined) return `MongoDB ${buildInfo.version}`;
  const fromBinary = /ferretdb-(v\d+\.\d+\.\d+)/.exec(process.env.FERRETDB_BIN ?? "")?.[1];
  const known = buildInfo.ferretdbVersion === "unknown" ? fromBinary : buildInfo.ferretdbVersion;
  return `FerretDB ${known ?? "(version unknown)"} on SQLite, speaking MongoDB ${buildInfo.version}`;
}

// persist-mongo's collection, document, update and filters, sent by hand: _id is the JSON array
// [strategy, symbol], the row is JSON text, an index on strategyName serves listings, and reads
// skip expired documents (none expire here, but the server still evaluates the filter).
async function driverStore(url: string, databaseName: string, collectionName: string): Promise<SignalStore> {
  const client = new MongoClient(url);
  await client.connect();
  const collection = client
    .db(databaseName)
    .collection<SignalDocument>(collectionName, { writeConcern: WRITE_CONCERN });
  await collection.createIndex({ strategyName: 1 }, { name: "strategyName_1" });
  const idOf = (key: { strategyName: string; symbol: string }) => JSON.stringify([key.strategyName, key.symbol]);
  return {
    write: async (key, row) => {
      const fields = {
        strategyName: key.strategyName,
        symbol: key.symbol,
        signal: JSON.stringify(row),
        updatedAt: new Date(),
      };
      await collection.updateOne({ _id: idOf(key) }, { $set: fields, $unset: { expiresAt: "" } }, { upsert: true });
    },
    read: async (key) => {
      const document = await collection.findOne({ _id: idOf(key), expiresAt: { $not: { $lte: new Date() } } });
      return document === null ? null : JSON.parse(document.signal);
    },
    delete: async (key) => {
      await collection.deleteOne({ _id: idOf(key) });
    },
    close: () => client.close(),
  };
}
