import { fileURLToPath } from "node:url";
import { runPersistContract } from "@persist-kit/contract";
import { getRedisUrl } from "@persist-kit/tools-test-servers";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, it } from "vitest";
import { PersistRedis, signalRedisKey } from "../src/index.js";
import { closedPort, deleteKeys, uniquePrefix } from "./helpers.js";

const WORKER = fileURLToPath(new URL("./fixtures/redis-worker.mjs", import.meta.url));
const RUN_PREFIX = uniquePrefix("contract");
const UNAVAILABLE_TIMEOUT_MS = 1_000;

let url = "";
let raw: Redis | undefined;
let namespaces = 0;

function rawClient(): Redis {
  if (raw === undefined) throw new Error("setup did not run");
  return raw;
}

runPersistContract(
  { describe, it, beforeAll, afterAll },
  {
    name: "redis (single server)",
    async setup() {
      url = await getRedisUrl();
      raw = new Redis(url);
      await raw.ping();
    },
    // Each backend gets its own key prefix: a fresh, empty namespace on the shared server.
    create: ({ ttlMs }) => new PersistRedis({ url, prefix: `${RUN_PREFIX}${++namespaces}:`, ttlMs }),
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
    worker: { module: WORKER, options: (backend) => ({ url, prefix: backend.prefix }) },
    ttl: true,
    unavailable: {
      create: async () =>
        new PersistRedis({ url: `redis://127.0.0.1:${await closedPort()}`, timeoutMs: UNAVAILABLE_TIMEOUT_MS }),
      timeoutMs: UNAVAILABLE_TIMEOUT_MS,
    },
  },
  { killTrials: 100 },
);
