// The redis family: persist-redis against ioredis (plain and auto-pipelined) and node-redis sending
// SET/GET/DEL themselves under persist-redis' key, keyv with @keyv/redis, and unstorage's redis driver.
import { createKeyv } from "@keyv/redis";
import type { PersistBase } from "@persist-kit/core";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { createStorage } from "unstorage";
import redisDriver from "unstorage/drivers/redis";
import type { BenchKey, Contender, Family, SignalStore } from "../model.js";
import { cachedPerKey, keyvStore, loadPackage, persistStore, serverUrl, unstorageStore } from "../stores.js";
import { DRIVER_GOALS, PEER_GOALS } from "../targets.js";
import type { FamilySetup } from "./setup.js";

/** What the harness uses of @persist-kit/persist-redis (typed here: see loadPackage). */
export interface PersistRedisModule {
  PersistRedis: new (options: {
    url: string;
    prefix: string;
  }) => PersistBase & {
    close(): Promise<void>;
    /** The backtest writer: changes are queued and sent in pipelines. */
    createBatchWriter(options?: { maxBatchSize?: number }): PersistBase & { flush(): Promise<void> };
  };
  /** The Redis key persist-redis stores a signal under: `{prefix}signal:{strategy}:{symbol}`, names escaped. */
  signalRedisKey(prefix: string, key: { strategyName: string; symbol: string }): string;
}

const PIPELINING_NOTE =
  "it writes every command issued in the same tick to the socket in one go (automatic pipelining), " +
  "so with operations in flight it makes fewer system calls and the server reads several commands per read; " +
  "a lone command gains nothing from it";

/** The redis family, every contender under its own key prefix of this run. */
export async function redisFamily(setup: FamilySetup): Promise<Family> {
  const url = serverUrl("REDIS_URL");
  const prefix = (name: string) => `bench-${setup.tag}-${name}:`;
  const openBackend = async (name: string) => {
    const { PersistRedis } = await loadPackage<PersistRedisModule>("@persist-kit/persist-redis");
    return new PersistRedis({ url, prefix: prefix(name) });
  };
  const contenders: Contender[] = [
    {
      name: "persist-redis",
      role: "ours",
      description:
        "PersistRedis: one write or delete script (EVALSHA, revision and floor checked on the server) or one GET per call, through ioredis",
      open: async () => persistStore(await openBackend("ours")),
    },
    {
      name: "ioredis",
      role: "driver",
      description: "ioredis with default options: SET / GET / DEL of the JSON text under persist-redis' key",
      goals: DRIVER_GOALS,
      inFlightNote:
        "plain SET / GET / DEL under the same key with nothing on top: persist-redis sends each write and delete " +
        "as a script that checks the stored revision and the group's floor on the server, and checks keys and rows, " +
        "sets deadlines and wraps errors per call",
      // The key first: a client made before a failed package load would be left connected.
      open: async () => {
        const keys = await redisKeys(prefix("ioredis"));
        return ioredisStore(new Redis(url), keys);
      },
    },
    {
      name: "ioredis auto-pipelining",
      role: "driver",
      description: "ioredis with enableAutoPipelining: SET / GET / DEL of the JSON text under persist-redis' key",
      inFlightNote: `ioredis with enableAutoPipelining: ${PIPELINING_NOTE}`,
      open: async () => {
        const keys = await redisKeys(prefix("ioredis-pipelined"));
        return ioredisStore(new Redis(url, { enableAutoPipelining: true }), keys);
      },
    },
    {
      name: "node-redis",
      role: "driver",
      description: "node-redis (the redis package): SET / GET / DEL of the JSON text under persist-redis' key",
      inFlightNote: `node-redis pipelines by default: ${PIPELINING_NOTE}`,
      open: async () => nodeRedisStore(url, await redisKeys(prefix("node-redis"))),
    },
    {
      name: "keyv redis",
      role: "peer",
      description: "keyv with @keyv/redis (node-redis client underneath)",
      goals: PEER_GOALS,
      inFlightNote: `@keyv/redis runs on node-redis, which pipelines by default: ${PIPELINING_NOTE}`,
      open: async () => {
        const keyv = createKeyv(url, { namespace: prefix("keyv").slice(0, -1) });
        return keyvStore(keyv);
      },
    },
    {
      name: "unstorage redis",
      role: "peer",
      description: "unstorage with its redis driver (ioredis underneath)",
      goals: PEER_GOALS,
      inFlightNote: "a thin layer over ioredis (GET / SET / UNLINK) that checks nothing per call",
      open: async () => {
        const storage = createStorage({ driver: redisDriver({ url, base: prefix("unstorage").slice(0, -1) }) });
        return unstorageStore(storage);
      },
    },
  ];
  return {
    name: "redis",
    description: await describeServer(url),
    contenders,
    unavailable: [],
    passes: setup.passes,
    openBackend,
    close: async () => {},
  };
}

// The very key persist-redis uses, from the package itself (prefix, "signal:", the escaped strategy
// as hash tag, the escaped symbol). Worked out once per key, as a hand-written client would keep
// its key strings, so the raw contenders' timed work stays the command alone.
async function redisKeys(prefix: string): Promise<(key: BenchKey) => string> {
  const { signalRedisKey } = await loadPackage<PersistRedisModule>("@persist-kit/persist-redis");
  return cachedPerKey((key) => signalRedisKey(prefix, key));
}

/** The commands both reference clients share, as each of them spells them. */
interface StringCommands {
  set(key: string, value: string): Promise<unknown>;
  get(key: string): Promise<string | null>;
  del(key: string): Promise<unknown>;
}

// The same SET / GET / DEL whichever client sends them, so the two references differ only in
// the client.
function stringStore(
  client: StringCommands,
  redisKey: (key: BenchKey) => string,
  close: () => Promise<unknown>,
): SignalStore {
  return {
    write: async (key, row) => {
      await client.set(redisKey(key), JSON.stringify(row));
    },
    read: async (key) => {
      const text = await client.get(redisKey(key));
      return text === null ? null : JSON.parse(text);
    },
    delete: async (key) => {
      await client.del(redisKey(key));
    },
    close: async () => {
      await close();
    },
  };
}

async function ioredisStore(client: Redis, redisKey: (key: BenchKey) => string): Promise<SignalStore> {
  await client.ping();
  return stringStore(client, redisKey, () => client.quit());
}

async function nodeRedisStore(url: string, redisKey: (key: BenchKey) => string): Promise<SignalStore> {
  const client = createClient({ url });
  await client.connect();
  return stringStore(client, redisKey, () => client.close());
}

// The persistence settings decide what a write costs (appendfsync always: an fsync per write batch).
async function describeServer(url: string): Promise<string> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await client.connect();
    const info = await client.info("server");
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
    const [, appendonly] = (await client.config("GET", "appendonly")) as string[];
    const [, appendfsync] = (await client.config("GET", "appendfsync")) as string[];
    return `redis-server ${version}, appendonly ${appendonly}, appendfsync ${appendfsync}`;
  } finally {
    client.disconnect();
  }
}
