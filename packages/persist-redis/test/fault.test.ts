// Faults that make a write fail, on private servers only: the failed write never lands after a
// later acknowledged delete, and its error says whether it may have been applied. Each fault runs
// PERSIST_KIT_FAULT_TRIALS trials (default 50, 5 when CI is set) against one server or cluster.

import { makeSignalRow } from "@persist-kit/contract";
import {
  BackendUnavailableError,
  type ISignalRow,
  type PersistError,
  PersistSignalAdapter,
  type RecordKey,
} from "@persist-kit/core";
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PersistRedis, RedisRecordStore, recordRedisKey, signalRedisKey } from "../src/index.js";
import {
  joinEmptyMaster,
  type PrivateCluster,
  type PrivateRedis,
  startPrivateCluster,
  startPrivateRedis,
  withRawClient,
} from "./helpers.js";

const TRIALS = faultTrials();
const STRATEGY = "fault";
const DURABLE_CONFIG = ["appendonly yes", "appendfsync always", 'save ""'];
const ADAPTER_TIMEOUT_MS = 500;
// Below the adapter's timeout, so the store's own judgement of the outcome reaches the caller
// instead of the adapter's (which cannot tell whether the backend sent anything).
const STORE_TIMEOUT_MS = 300;
// Longer than every retry ioredis' cluster client makes on its own by default (16 redirections,
// 100 ms apart, each after a slot refresh): a write it still holds would land within this.
const CLUSTER_RETRY_WAIT_MS = 2_500;
// A single server has no retry queue; a command sent to a frozen one runs as soon as it goes on.
const SINGLE_RETRY_WAIT_MS = 500;

function faultTrials(): number {
  const text = process.env.PERSIST_KIT_FAULT_TRIALS;
  if (text === undefined || text === "") return process.env.CI ? 5 : 50;
  const trials = Number(text);
  if (!Number.isInteger(trials) || trials < 1) {
    throw new Error(`PERSIST_KIT_FAULT_TRIALS must be a whole number of at least 1, got ${JSON.stringify(text)}`);
  }
  return trials;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One fault: put in place before the write, taken away after it failed. */
interface Fault {
  inject(): Promise<void>;
  heal(): Promise<void>;
}

/** What a run of trials saw: the outcome of each failed write, and the keys found after their delete. */
interface TrialReport {
  outcomes: Record<string, number>;
  lateLandings: string[];
}

function trialRow(trial: number, symbol: string): ISignalRow {
  return makeSignalRow(trial, { symbol, strategyName: STRATEGY, note: `row A of trial ${trial}` });
}

function outcomeOf(error: unknown): string {
  if (error === undefined) return "resolved";
  if (!(error instanceof BackendUnavailableError)) return `not BackendUnavailableError: ${String(error)}`;
  return error.outcome;
}

// The delete must be acknowledged: right after a heal the server may still be reconnecting or
// its slot not served yet, so a failed delete is tried again.
async function acknowledged(operation: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await operation();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(20);
    }
  }
}

/** Resolves once `store` refuses a ping because it is not connected (not because a sent ping went unanswered). */
async function untilClientKnowsItIsDisconnected(store: RedisRecordStore): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const error = await store.ping().then(
      () => undefined,
      (failure: unknown) => failure,
    );
    if (error instanceof BackendUnavailableError && error.outcome === "not-applied") return;
    if (Date.now() > deadline) throw new Error(`the client never saw the server go: last ping gave ${String(error)}`);
    await sleep(10);
  }
}

/** Where a trial writes and deletes row A: through the adapter, or straight into the store. */
interface SignalWriter {
  /** Before the fault: what a bot does at start for the key. */
  init(symbol: string): Promise<void>;
  write(symbol: string, row: ISignalRow): Promise<void>;
  delete(symbol: string): Promise<void>;
  close(): Promise<void>;
}

/** The adapter a bot uses: its own timeout, fenced changes (a late write cannot land after a later delete). */
function throughAdapter(persist: PersistRedis): SignalWriter {
  const signals = new PersistSignalAdapter(persist, { timeoutMs: ADAPTER_TIMEOUT_MS });
  return {
    // The adapter then knows the key's revision, so the write goes out at once (no read first).
    init: (symbol) => signals.waitForInit(symbol, STRATEGY).then(() => {}),
    write: (symbol, row) => signals.setPendingSignal(symbol, STRATEGY, row),
    delete: (symbol) => signals.deletePendingSignal(symbol, STRATEGY),
    close: () => signals.close(),
  };
}

/** The store alone: plain writes and deletes, no fencing; only the driver decides what gets sent. */
function throughStore(persist: PersistRedis): SignalWriter {
  return {
    init: async () => {},
    write: (symbol, row) => persist.writeSignalData(symbol, STRATEGY, row),
    delete: (symbol) => persist.deleteSignalData(symbol, STRATEGY),
    close: async () => {},
  };
}

const WRITERS: [string, (persist: PersistRedis) => SignalWriter][] = [
  ["through the adapter", throughAdapter],
  ["through the store alone", throughStore],
];

/**
 * Per trial: inject the fault, write row A (it must fail), heal, delete the key (acknowledged).
 * After every trial, wait out any retry and read each key with a fresh client: a key still there
 * is a write that landed after its acknowledged delete.
 */
async function runTrials(
  writer: SignalWriter,
  fault: Fault,
  retryWaitMs: number,
  readStored: (symbols: readonly string[]) => Promise<(string | null)[]>,
): Promise<TrialReport> {
  const outcomes: Record<string, number> = {};
  const symbols: string[] = [];
  try {
    // A bot that has been running: its write and delete scripts are loaded on the connection, so
    // a write sent again by the driver would run (a script never loaded is refused with NOSCRIPT).
    await writer.write("WARM/USDT", trialRow(0, "WARM/USDT"));
    await writer.delete("WARM/USDT");
    for (let trial = 0; trial < TRIALS; trial++) {
      const symbol = `T${trial}/USDT`;
      symbols.push(symbol);
      await writer.init(symbol);
      await fault.inject();
      let failure: unknown;
      try {
        await writer.write(symbol, trialRow(trial, symbol));
      } catch (error) {
        failure = error;
      } finally {
        await fault.heal();
      }
      const outcome = outcomeOf(failure);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      await acknowledged(() => writer.delete(symbol));
    }
    await sleep(retryWaitMs);
  } finally {
    await writer.close();
  }
  const stored = await readStored(symbols);
  return { outcomes, lateLandings: symbols.filter((_, index) => stored[index] !== null) };
}

function signalKeys(persist: PersistRedis, symbols: readonly string[]): string[] {
  return symbols.map((symbol) => signalRedisKey(persist.prefix, { strategyName: STRATEGY, symbol }));
}

async function readWithFreshClient(url: string, keys: readonly string[]): Promise<(string | null)[]> {
  const fresh = new Redis(url);
  try {
    return await Promise.all(keys.map((key) => fresh.get(key)));
  } finally {
    fresh.disconnect();
  }
}

async function readWithFreshCluster(cluster: PrivateCluster, keys: readonly string[]): Promise<(string | null)[]> {
  const fresh = new Cluster(cluster.nodes);
  try {
    return await Promise.all(keys.map((key) => fresh.get(key)));
  } finally {
    fresh.disconnect();
  }
}

async function rejection(operation: Promise<unknown>): Promise<{ error: unknown; elapsedMs: number }> {
  const started = performance.now();
  const error = await operation.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  return { error, elapsedMs: performance.now() - started };
}

async function keySlot(cluster: PrivateCluster, redisKey: string): Promise<number> {
  const port = (cluster.masters[0] as PrivateRedis).port;
  return Number(await withRawClient(port, (client) => client.call("CLUSTER", "KEYSLOT", redisKey)));
}

/** Waits until `server` says `cluster_state:ok`. */
async function clusterStateOk(server: PrivateRedis): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (
    !String(await withRawClient(server.port, (client) => client.call("CLUSTER", "INFO"))).includes("cluster_state:ok")
  ) {
    if (Date.now() > deadline) throw new Error(`${server.url} did not reach cluster_state:ok within 10 s`);
    await sleep(50);
  }
}

/** Takes `slot` from its master (CLUSTER DELSLOTS), so the master answers CLUSTERDOWN for it, and gives it back. */
function slotRemoval(cluster: PrivateCluster, slot: number): Fault {
  const master = cluster.masterOf(slot);
  return {
    inject: () =>
      withRawClient(master.port, (client) => client.call("CLUSTER", "DELSLOTS", String(slot))).then(() => {}),
    heal: () => withRawClient(master.port, (client) => client.call("CLUSTER", "ADDSLOTS", String(slot))).then(() => {}),
  };
}

describe("a single redis-server frozen with SIGSTOP", () => {
  let server: PrivateRedis;
  let persist: PersistRedis;

  beforeAll(async () => {
    server = await startPrivateRedis(DURABLE_CONFIG);
    persist = new PersistRedis({ url: server.url, timeoutMs: STORE_TIMEOUT_MS, maxReconnectDelayMs: 50 });
  });

  afterAll(async () => {
    server?.resume();
    await persist?.close();
    await server?.destroy();
  });

  const frozen: Fault = { inject: async () => server.pause(), heal: async () => server.resume() };

  for (const [through, writer] of WRITERS) {
    it(`${through}: a write sent to the frozen server is reported unknown and never lands after the delete (${TRIALS} trials)`, async () => {
      await persist.ping();
      const report = await runTrials(writer(persist), frozen, SINGLE_RETRY_WAIT_MS, (symbols) =>
        readWithFreshClient(server.url, signalKeys(persist, symbols)),
      );
      expect(report).toEqual({ outcomes: { unknown: TRIALS }, lateLandings: [] });
    });
  }
});

describe("a single redis-server killed with SIGKILL and restarted (appendfsync always)", () => {
  let server: PrivateRedis;
  let persist: PersistRedis;

  beforeAll(async () => {
    server = await startPrivateRedis(DURABLE_CONFIG);
    persist = new PersistRedis({ url: server.url, timeoutMs: STORE_TIMEOUT_MS, maxReconnectDelayMs: 50 });
  });

  afterAll(async () => {
    await persist?.close();
    await server?.destroy();
  });

  const killed: Fault = {
    inject: async () => {
      await server.stop("SIGKILL");
      // The client learns of the closed socket on a later turn of the event loop.
      await sleep(20);
    },
    heal: () => server.start(),
  };

  for (const [through, writer] of WRITERS) {
    it(`${through}: a write while the server is down is reported not-applied and never lands (${TRIALS} trials)`, async () => {
      await persist.ping();
      const report = await runTrials(writer(persist), killed, SINGLE_RETRY_WAIT_MS, (symbols) =>
        readWithFreshClient(server.url, signalKeys(persist, symbols)),
      );
      expect(report).toEqual({ outcomes: { "not-applied": TRIALS }, lateLandings: [] });
    });
  }
});

describe("a Redis Cluster whose slot for the key is not served (CLUSTERDOWN)", () => {
  let cluster: PrivateCluster;
  let persist: PersistRedis;

  beforeAll(async () => {
    cluster = await startPrivateCluster(3, DURABLE_CONFIG);
    persist = new PersistRedis({ clusterNodes: cluster.nodes, timeoutMs: STORE_TIMEOUT_MS, maxReconnectDelayMs: 50 });
  });

  afterAll(async () => {
    await persist?.close();
    await cluster?.destroy();
  });

  for (const [through, writer] of WRITERS) {
    it(`${through}: a refused write is reported not-applied and never lands after the delete (${TRIALS} trials)`, async () => {
      await persist.ping();
      const slot = await keySlot(cluster, signalRedisKey(persist.prefix, { strategyName: STRATEGY, symbol: "any" }));
      const report = await runTrials(writer(persist), slotRemoval(cluster, slot), CLUSTER_RETRY_WAIT_MS, (symbols) =>
        readWithFreshCluster(cluster, signalKeys(persist, symbols)),
      );
      expect(report).toEqual({ outcomes: { "not-applied": TRIALS }, lateLandings: [] });
    });
  }
});

describe("the record store never sends a write after its timeout rejected it", () => {
  const key: RecordKey = { namespace: "fault", parts: ["store", "BTC/USDT"] };

  describe("on a single server", () => {
    let server: PrivateRedis;

    beforeAll(async () => {
      server = await startPrivateRedis(DURABLE_CONFIG);
    });

    // A test that failed half way must not leave the next one a stopped or frozen server.
    beforeEach(async () => {
      server.resume();
      if (!server.isRunning()) await server.start();
    });

    afterAll(async () => {
      server?.resume();
      await server?.destroy();
    });

    it("while the client is disconnected (server killed): rejected not-applied within the timeout, absent after the restart", async () => {
      const store = new RedisRecordStore({ url: server.url, timeoutMs: STORE_TIMEOUT_MS, maxReconnectDelayMs: 50 });
      try {
        await store.ping();
        await server.stop("SIGKILL");
        // The server is gone, but the client learns it only when its socket reports the close.
        // A write sent before that went out on an open socket, and "unknown" is then the honest
        // answer; this test is about a write made once the client knows it is disconnected.
        await untilClientKnowsItIsDisconnected(store);
        const { error, elapsedMs } = await rejection(store.write(key, JSON.stringify("offline")));
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect((error as PersistError).outcome).toBe("not-applied");
        expect((error as Error).message).toMatch(/; nothing was changed$/);
        expect(elapsedMs).toBeLessThan(STORE_TIMEOUT_MS + 200);
        await server.start();
        // The same client reconnects; a write it had queued would be sent now.
        await acknowledged(() => store.ping());
        await sleep(SINGLE_RETRY_WAIT_MS);
        expect(await readWithFreshClient(server.url, [recordRedisKey(store.prefix, key)])).toEqual([null]);
      } finally {
        await store.close();
      }
    });

    it("while the first connection waits on a frozen server: rejected not-applied, absent after SIGCONT", async () => {
      const store = new RedisRecordStore({ url: server.url, timeoutMs: STORE_TIMEOUT_MS, maxReconnectDelayMs: 50 });
      try {
        server.pause();
        let result: { error: unknown; elapsedMs: number };
        try {
          result = await rejection(store.write(key, JSON.stringify("frozen before ready")));
        } finally {
          server.resume();
        }
        expect(result.error).toBeInstanceOf(BackendUnavailableError);
        expect((result.error as PersistError).outcome).toBe("not-applied");
        await acknowledged(() => store.ping());
        await sleep(SINGLE_RETRY_WAIT_MS);
        expect(await readWithFreshClient(server.url, [recordRedisKey(store.prefix, key)])).toEqual([null]);
      } finally {
        await store.close();
      }
    });

    it("a write already sent to a frozen server is reported unknown, and lands when the server goes on", async () => {
      const store = new RedisRecordStore({ url: server.url, timeoutMs: STORE_TIMEOUT_MS });
      try {
        await store.ping();
        server.pause();
        let result: { error: unknown; elapsedMs: number };
        try {
          result = await rejection(store.write(key, JSON.stringify("sent")));
        } finally {
          server.resume();
        }
        expect(result.error).toBeInstanceOf(BackendUnavailableError);
        expect((result.error as PersistError).outcome).toBe("unknown");
        expect((result.error as Error).message).toMatch(
          /did not answer within 300 ms; the change may have been applied/,
        );
        // A sent command cannot be recalled: this is why the outcome is "unknown", and why the
        // adapter fences every change with a revision.
        await acknowledged(() => store.ping());
        expect((await store.read(key)).found).toBe(true);
        await store.delete(key);
      } finally {
        await store.close();
      }
    });
  });

  describe("on a cluster redirecting to a node not connected yet", () => {
    let cluster: PrivateCluster;
    let extra: { server: PrivateRedis; nodeId: string };

    beforeAll(async () => {
      cluster = await startPrivateCluster(3, DURABLE_CONFIG);
      extra = await joinEmptyMaster(cluster, DURABLE_CONFIG);
    });

    afterAll(async () => {
      extra?.server.resume();
      await extra?.server.destroy();
      await cluster?.destroy();
    });

    // ioredis gives every node connection an offline queue, whatever redisOptions say: a
    // command redirected (MOVED) to a node it is still connecting to waits there and would be
    // sent once the node answers, long after the caller was told the write failed.
    it("a write that timed out in the new node's queue is never sent when the node comes back", async () => {
      const store = new RedisRecordStore({ clusterNodes: cluster.nodes, timeoutMs: STORE_TIMEOUT_MS });
      const redisKey = recordRedisKey(store.prefix, key);
      const slot = await keySlot(cluster, redisKey);
      try {
        await store.ping();
        // The slot is empty: it moves to the new node at once, and its old master answers MOVED.
        for (const node of [extra.server, ...cluster.masters]) {
          await withRawClient(node.port, (client) =>
            client.call("CLUSTER", "SETSLOT", String(slot), "NODE", extra.nodeId),
          );
        }
        // A new master refuses keys (CLUSTERDOWN) for its first 2 s: the write must be able to
        // land there if it were sent late, and be read back.
        await clusterStateOk(extra.server);
        extra.server.pause();
        let result: { error: unknown; elapsedMs: number };
        try {
          result = await rejection(store.write(key, JSON.stringify("queued")));
        } finally {
          extra.server.resume();
        }
        expect(result.error).toBeInstanceOf(BackendUnavailableError);
        expect(result.elapsedMs).toBeLessThan(STORE_TIMEOUT_MS + 200);
        // The node answers its connection's handshake, then whatever its queue holds.
        await acknowledged(() => withRawClient(extra.server.port, (client) => client.ping()).then(() => {}));
        await sleep(SINGLE_RETRY_WAIT_MS);
        // A fresh master may still answer CLUSTERDOWN for a moment on a busy machine: read until it answers.
        let stored: string | null | undefined;
        await acknowledged(async () => {
          stored = await withRawClient(extra.server.port, (client) => client.get(redisKey));
        });
        expect(stored).toBeNull();
      } finally {
        await store.close();
      }
    });
  });

  describe("on a cluster answering CLUSTERDOWN", () => {
    let cluster: PrivateCluster;

    beforeAll(async () => {
      cluster = await startPrivateCluster(3, DURABLE_CONFIG);
    });

    afterAll(async () => {
      await cluster?.destroy();
    });

    it("rejects at once with the refusal (not-applied), and the write never lands after the delete", async () => {
      const store = new RedisRecordStore({ clusterNodes: cluster.nodes, timeoutMs: 1_000 });
      const redisKey = recordRedisKey(store.prefix, key);
      const fault = slotRemoval(cluster, await keySlot(cluster, redisKey));
      try {
        // Loads the scripts on the connection, as a running bot has (see runTrials).
        await store.write(key, JSON.stringify("before"));
        await store.delete(key);
        await fault.inject();
        let result: { error: unknown; elapsedMs: number };
        try {
          result = await rejection(store.write(key, JSON.stringify("refused")));
        } finally {
          await fault.heal();
        }
        expect(result.error).toBeInstanceOf(BackendUnavailableError);
        expect((result.error as PersistError).outcome).toBe("not-applied");
        expect((result.error as Error).message).toMatch(/CLUSTERDOWN .*; nothing was changed/);
        expect(result.elapsedMs).toBeLessThan(500);
        await acknowledged(() => store.delete(key).then(() => {}));
        await sleep(CLUSTER_RETRY_WAIT_MS);
        expect(await readWithFreshCluster(cluster, [redisKey])).toEqual([null]);
      } finally {
        await store.close();
      }
    });
  });
});
