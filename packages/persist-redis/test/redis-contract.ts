import { fileURLToPath } from "node:url";
import { runPersistContract } from "@persist-kit/contract";
import type { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, it } from "vitest";
import { PersistRedis, type PersistRedisOptions, signalRedisKey, storedRecordText } from "../src/index.js";
import { closedPort, deleteKeys, uniquePrefix } from "./helpers.js";

const WORKER = fileURLToPath(new URL("./fixtures/redis-worker.mjs", import.meta.url));
const UNAVAILABLE_TIMEOUT_MS = 1_000;
const ENVELOPE_HEADER = /^\{"v":1,"revision":\d+,"value":/;

/** Where a contract run's backends connect: a server's URL or a cluster's nodes. */
type RedisTarget = Pick<PersistRedisOptions, "url" | "clusterNodes">;

/** Runs the persist-kit contract against one Redis deployment (a server or a cluster). */
export function runRedisContract(deployment: {
  name: string;
  /** The deployment's target and a raw client on it, for the suite's direct reads and writes. */
  connect(): Promise<{ target: RedisTarget; raw: Redis | Cluster }>;
  /** A target where nothing listens, on `port`. */
  unreachable(port: number): RedisTarget;
  killTrials: number;
}): void {
  const runPrefix = uniquePrefix("contract");
  let target: RedisTarget = {};
  let raw: Redis | Cluster | undefined;
  let namespaces = 0;
  const rawClient = () => {
    if (raw === undefined) throw new Error("setup did not run");
    return raw;
  };

  runPersistContract(
    { describe, it, beforeAll, afterAll },
    {
      name: deployment.name,
      async setup() {
        ({ target, raw } = await deployment.connect());
        await raw.ping();
      },
      // Each backend gets its own key prefix: a fresh, empty namespace on the shared deployment.
      create: ({ ttlMs }) => new PersistRedis({ ...target, prefix: `${runPrefix}${++namespaces}:`, ttlMs }),
      async teardown() {
        if (raw === undefined) return;
        await deleteKeys(raw, runPrefix);
        await raw.quit();
      },
      // The row's JSON inside the v1 envelope, sliced out as stored (never re-encoded), so the
      // suite sees exactly the bytes a read would parse.
      raw: {
        read: async (backend, symbol, strategyName) => {
          const stored = await rawClient().get(signalRedisKey(backend.prefix, { strategyName, symbol }));
          if (stored === null) return null;
          // Sliced by the envelope's text alone: the suite also plants values that are not JSON
          // (which parseStoredRecord rejects) and checks that they stay in place.
          const header = ENVELOPE_HEADER.exec(stored);
          if (header === null || !stored.endsWith("}")) throw new Error(`not a v1 record: ${stored}`);
          return stored.slice(header[0].length, -1);
        },
        write: async (backend, symbol, strategyName, text) => {
          await rawClient().set(signalRedisKey(backend.prefix, { strategyName, symbol }), storedRecordText(1, text));
        },
      },
      worker: { module: WORKER, options: (backend) => ({ ...target, prefix: backend.prefix }) },
      ttl: true,
      unavailable: {
        create: async () =>
          new PersistRedis({ ...deployment.unreachable(await closedPort()), timeoutMs: UNAVAILABLE_TIMEOUT_MS }),
        timeoutMs: UNAVAILABLE_TIMEOUT_MS,
      },
    },
    { killTrials: deployment.killTrials },
  );
}
