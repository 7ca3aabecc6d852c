import { fileURLToPath } from "node:url";
import { runPersistContract } from "@persist-kit/contract";
import { getRedisClusterNodes, type RedisClusterNode } from "@persist-kit/tools-test-servers";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, it } from "vitest";
import { PersistRedis, signalRedisKey } from "../src/index.js";
import { closedPort, deleteKeys, uniquePrefix } from "./helpers.js";

const WORKER = fileURLToPath(new URL("./fixtures/redis-worker.mjs", import.meta.url));
const RUN_PREFIX = uniquePrefix("cluster-contract");
const UNAVAILABLE_TIMEOUT_MS = 1_000;

let clusterNodes: RedisClusterNode[] = [];
let raw: Cluster | undefined;
let namespaces = 0;

function rawClient(): Cluster {
  if (raw === undefined) throw new Error("setup did not run");
  return raw;
}

runPersistContract(
  { describe, it, beforeAll, afterAll },
  {
    name: "redis (cluster, three masters)",
    async setup() {
      clusterNodes = await getRedisClusterNodes();
      raw = new Cluster(clusterNodes);
      await raw.ping();
    },
    create: ({ ttlMs }) => new PersistRedis({ clusterNodes, prefix: `${RUN_PREFIX}${++namespaces}:`, ttlMs }),
    async teardown() {
      if (raw === undefined) return;
      await deleteKeys(raw, RUN_PREFIX);
      await raw.quit();
    },
    raw: {
      read: (backend, symbol, strategyName) => rawClient().get(signalRedisKey(backend.prefix, strategyName, symbol)),
      write: async (backend, symbol, strategyName, text) => {
        await rawClient().set(signalRedisKey(backend.prefix, strategyName, symbol), text);
      },
    },
    worker: { module: WORKER, options: (backend) => ({ clusterNodes, prefix: backend.prefix }) },
    ttl: true,
    unavailable: {
      create: async () =>
        new PersistRedis({
          clusterNodes: [{ host: "127.0.0.1", port: await closedPort() }],
          timeoutMs: UNAVAILABLE_TIMEOUT_MS,
        }),
      timeoutMs: UNAVAILABLE_TIMEOUT_MS,
    },
  },
  { killTrials: 50 },
);
