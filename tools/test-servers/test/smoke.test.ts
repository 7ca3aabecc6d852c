import { randomUUID } from "node:crypto";
import { Cluster, Redis } from "ioredis";
import { MongoClient } from "mongodb";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { getMongoUrl, getPostgresUrl, getRedisClusterNodes, getRedisUrl } from "../src/index.mjs";

describe("redis answers a SET, GET, DEL round trip", () => {
  it("on the single node", async () => {
    const redis = new Redis(await getRedisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      const key = `smoke:${randomUUID()}`;
      expect(await redis.set(key, "value")).toBe("OK");
      expect(await redis.get(key)).toBe("value");
      expect(await redis.del(key)).toBe(1);
      expect(await redis.get(key)).toBeNull();
    } finally {
      redis.disconnect();
    }
  });

  it("on a Redis Cluster of three masters, with keys in every master's slots", async () => {
    const cluster = new Cluster(await getRedisClusterNodes(), { lazyConnect: true });
    try {
      await cluster.connect();
      expect(await cluster.cluster("INFO")).toContain("cluster_state:ok");
      expect(cluster.nodes("master")).toHaveLength(3);

      // Hash tags spread the keys over the slots, so every master serves some of them.
      const keys = Array.from({ length: 12 }, (_, index) => `smoke:{strategy-${index}}:${randomUUID()}`);
      for (const key of keys) expect(await cluster.set(key, key)).toBe("OK");
      for (const key of keys) expect(await cluster.get(key)).toBe(key);
      for (const key of keys) expect(await cluster.del(key)).toBe(1);
    } finally {
      cluster.disconnect();
    }
  });
});

describe("postgres answers a query and keeps a table row", () => {
  it("inserts a row and selects it back", async () => {
    const client = new pg.Client({ connectionString: await getPostgresUrl() });
    await client.connect();
    const table = `smoke_${randomUUID().replaceAll("-", "")}`;
    try {
      expect((await client.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
      await client.query(
        `create table ${table} (strategy_name text, symbol text, data jsonb not null, primary key (strategy_name, symbol))`,
      );
      await client.query(`insert into ${table} values ($1, $2, $3)`, ["breakout", "BTC/USDT", { priceOpen: 1.5 }]);
      const { rows } = await client.query(`select data from ${table} where strategy_name = $1 and symbol = $2`, [
        "breakout",
        "BTC/USDT",
      ]);
      expect(rows).toEqual([{ data: { priceOpen: 1.5 } }]);
    } finally {
      await client.query(`drop table if exists ${table}`);
      await client.end();
    }
  });
});

describe("mongo (FerretDB without Docker) upserts and finds a document", () => {
  it("updateOne with upsert, then findOne", async () => {
    const client = new MongoClient(await getMongoUrl(), { serverSelectionTimeoutMS: 10_000 });
    try {
      const signals = client.db("persist_kit_smoke").collection<{ _id: string; priceOpen: number }>("signals");
      const _id = `breakout:BTC/USDT:${randomUUID()}`;
      const result = await signals.updateOne({ _id }, { $set: { priceOpen: 1.5 } }, { upsert: true });
      expect(result.upsertedCount).toBe(1);
      expect(await signals.findOne({ _id })).toEqual({ _id, priceOpen: 1.5 });
      expect((await signals.deleteOne({ _id })).deletedCount).toBe(1);
    } finally {
      await client.close();
    }
  });
});
