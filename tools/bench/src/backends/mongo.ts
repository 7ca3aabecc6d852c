// The mongo family: persist-mongo against the mongodb driver keeping one document per key by hand
// (under persist-mongo's key id, with the same write concern), and keyv with @keyv/mongo.
import KeyvMongo from "@keyv/mongo";
import { type PersistBase, signalRecordKey } from "@persist-kit/core";
import Keyv from "keyv";
import { MongoClient, type WriteConcernSettings } from "mongodb";
import type { Contender, Family, SignalStore } from "../model.js";
import { cachedPerKey, keyvStore, loadPackage, persistStore, serverUrl } from "../stores.js";
import { DRIVER_GOALS, PEER_GOALS } from "../targets.js";
import type { FamilySetup } from "./setup.js";

/** What the harness uses of @persist-kit/persist-mongo (typed here: see loadPackage). */
interface PersistMongoModule {
  PersistMongo: new (url: string, options: { databaseName: string; collectionName: string }) => PersistBase;
  /** The `_id` prefix of every document of a record key: the JSON array `[namespace, ...parts]`. */
  keyDocumentPrefix(key: { namespace: string; parts: readonly string[] }): string;
}

// persist-mongo's default write concern: acknowledged by a majority, in the on-disk journal.
const WRITE_CONCERN: WriteConcernSettings = { w: "majority", journal: true };

/** The hand-written contender's document: one per key, replaced in place. */
interface KeyDocument {
  _id: string;
  namespace: string;
  parts: readonly string[];
  /** The row as JSON text, as persist-mongo stores it. */
  value: string;
}

/** The mongo family; every contender gets its own collection in this run's database. */
export async function mongoFamily(setup: FamilySetup): Promise<Family> {
  const url = serverUrl("MONGO_URL");
  const databaseName = `persist_kit_bench_${setup.tag}`;
  const admin = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
  await admin.connect();
  const server = describeServer(await admin.db("admin").command({ buildInfo: 1 }));
  const openBackend = async (name: string) => {
    const { PersistMongo } = await loadPackage<PersistMongoModule>("@persist-kit/persist-mongo");
    return new PersistMongo(url, { databaseName, collectionName: name });
  };
  const contenders: Contender[] = [
    {
      name: "persist-mongo",
      role: "ours",
      description:
        "PersistMongo: a change is a find of the key's newest documents, an insert on a unique _id and a check (plus deleting what it supersedes); a read one find; w: majority, j: true",
      open: async () => persistStore(await openBackend("ours")),
    },
    {
      name: "mongodb driver",
      role: "driver",
      description:
        "the mongodb driver by hand: one document per key under persist-mongo's key id, updateOne upsert / findOne / deleteOne, w: majority, j: true",
      goals: DRIVER_GOALS,
      inFlightNote:
        "one upsert, find or delete per call on one document per key: persist-mongo takes three round trips per change " +
        "(read the key's newest documents, insert on a unique _id, check) and deletes what it supersedes, to decide " +
        "revisions with inserts alone, and checks keys and rows",
      open: async () => {
        const { keyDocumentPrefix } = await loadPackage<PersistMongoModule>("@persist-kit/persist-mongo");
        return driverStore(url, databaseName, "driver", keyDocumentPrefix);
      },
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
    openBackend,
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

// What a user writes by hand with the driver: one document per key, replaced by an upsert, its
// `_id` persist-mongo's own key id (the JSON array [namespace, strategy, symbol], worked out once
// per key), the row as JSON text. persist-mongo itself keeps a document per change, decided by an
// insert on a unique _id (see its README): the ratio is what that protocol costs over the plainest
// safe use of the driver, at the same write concern.
async function driverStore(
  url: string,
  databaseName: string,
  collectionName: string,
  keyDocumentPrefix: PersistMongoModule["keyDocumentPrefix"],
): Promise<SignalStore> {
  const client = new MongoClient(url);
  await client.connect();
  const collection = client.db(databaseName).collection<KeyDocument>(collectionName, { writeConcern: WRITE_CONCERN });
  const idOf = cachedPerKey((key) => keyDocumentPrefix(signalRecordKey(key.symbol, key.strategyName)));
  return {
    write: async (key, row) => {
      const { namespace, parts } = signalRecordKey(key.symbol, key.strategyName);
      await collection.updateOne(
        { _id: idOf(key) },
        { $set: { namespace, parts, value: JSON.stringify(row) } },
        { upsert: true },
      );
    },
    read: async (key) => {
      const document = await collection.findOne({ _id: idOf(key) });
      return document === null ? null : JSON.parse(document.value);
    },
    delete: async (key) => {
      await collection.deleteOne({ _id: idOf(key) });
    },
    close: () => client.close(),
  };
}
