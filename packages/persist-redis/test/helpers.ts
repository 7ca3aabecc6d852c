import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Cluster, Redis } from "ioredis";
import type { RedisClient } from "../src/connection.js";

/** A key prefix no other test run uses. */
export function uniquePrefix(label: string): string {
  return `pk-test:${label}:${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}:`;
}

/** A TCP port that nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Deletes every key under `prefix`, on the server or every master of a cluster. */
export async function deleteKeys(client: RedisClient, prefix: string): Promise<void> {
  const servers = client.isCluster ? (client as Cluster).nodes("master") : [client as Redis];
  for (const server of servers) {
    let cursor = "0";
    do {
      const [next, keys] = await server.scan(cursor, "MATCH", `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`, "COUNT", 500);
      cursor = next;
      // One DEL per key: in a cluster, keys of different slots cannot share a command.
      for (const key of keys) await client.del(key);
    } while (cursor !== "0");
  }
}

/** A redis-server this test owns: its own temp dir and port, killed and restarted at will. */
export interface PrivateRedis {
  port: number;
  url: string;
  dir: string;
  /** Stops the server: SIGKILL (a crash) by default. Resolves once it has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and data dir, and waits until it answers. */
  start(): Promise<void>;
  /** Whether the process is up (started and not exited; a paused one counts as running). */
  isRunning(): boolean;
  /** Freezes the process (SIGSTOP): connections stay open, nothing answers. */
  pause(): void;
  /** Lets a paused process go on (SIGCONT). */
  resume(): void;
  /** Stops it and removes its data dir. */
  destroy(): Promise<void>;
}

/** Starts `redis-server` (REDIS_SERVER_BIN, else from PATH) with `configLines` added to a minimal config. */
export async function startPrivateRedis(configLines: string[]): Promise<PrivateRedis> {
  const bin = process.env.REDIS_SERVER_BIN ?? "redis-server";
  const dir = mkdtempSync(join(tmpdir(), "persist-redis-test-"));
  const port = await closedPort();
  const config = join(dir, "redis.conf");
  writeFileSync(
    config,
    [`port ${port}`, "bind 127.0.0.1", "daemonize no", `dir ${dir}`, 'logfile ""', ...configLines, ""].join("\n"),
  );
  let child: ChildProcess | undefined;
  let output = "";
  const start = async () => {
    output = "";
    const started = spawn(bin, [config], { stdio: ["ignore", "pipe", "pipe"] });
    started.stdout?.on("data", (chunk) => {
      output += chunk;
    });
    started.stderr?.on("data", (chunk) => {
      output += chunk;
    });
    child = started;
    await waitForPing(
      port,
      () => started.exitCode !== null || started.signalCode !== null,
      () => output,
    );
  };
  const stop = async (signal: NodeJS.Signals = "SIGKILL") => {
    const running = child;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill(signal);
    await exited;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    stop,
    start,
    isRunning: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    pause: () => child?.kill("SIGSTOP"),
    resume: () => child?.kill("SIGCONT"),
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPing(port: number, exited: () => boolean, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (exited()) throw new Error(`redis-server exited at start: ${output()}`);
    const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null });
    probe.on("error", () => {});
    try {
      await probe.connect();
      if ((await probe.ping()) === "PONG") return;
    } catch {
      // Not listening yet (or still loading its data): try again shortly.
    } finally {
      probe.disconnect();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer within 20 s: ${output()}`);
}

/** A Redis Cluster this test owns: private redis-servers, each master serving one range of slots. */
export interface PrivateCluster {
  masters: PrivateRedis[];
  /** The start nodes for `clusterNodes`. */
  nodes: { host: string; port: number }[];
  /** The master that serves `slot`. */
  masterOf(slot: number): PrivateRedis;
  /** Stops every server and removes their data dirs. */
  destroy(): Promise<void>;
}

const CLUSTER_SLOTS = 16_384;

/**
 * Starts `masterCount` cluster-enabled redis-servers (no replicas), gives each an equal range of
 * slots, joins them and waits until every node says `cluster_state:ok`. Bus ports are chosen
 * free like the data ports (`cluster-port`), so nothing clashes with the shared cluster.
 */
export async function startPrivateCluster(masterCount: number, configLines: string[] = []): Promise<PrivateCluster> {
  const masters: PrivateRedis[] = [];
  const busPorts: number[] = [];
  try {
    for (let index = 0; index < masterCount; index++) {
      const busPort = await closedPort();
      busPorts.push(busPort);
      masters.push(
        await startPrivateRedis([
          "cluster-enabled yes",
          "cluster-config-file nodes.conf",
          "cluster-node-timeout 5000",
          `cluster-port ${busPort}`,
          ...configLines,
        ]),
      );
    }
    const ranges = masters.map((_, index) => [
      Math.floor((index * CLUSTER_SLOTS) / masterCount),
      Math.floor(((index + 1) * CLUSTER_SLOTS) / masterCount) - 1,
    ]);
    await Promise.all(
      masters.map((master, index) =>
        withRawClient(master.port, async (client) => {
          const [first, last] = ranges[index] as number[];
          await client.call("CLUSTER", "ADDSLOTSRANGE", String(first), String(last));
        }),
      ),
    );
    await withRawClient((masters[0] as PrivateRedis).port, async (client) => {
      for (const [index, other] of masters.entries()) {
        if (index > 0) await client.call("CLUSTER", "MEET", "127.0.0.1", String(other.port), String(busPorts[index]));
      }
    });
    await waitForClusterOk(masters);
    return {
      masters,
      nodes: masters.map((master) => ({ host: "127.0.0.1", port: master.port })),
      masterOf: (slot) =>
        masters[
          ranges.findIndex(([first, last]) => slot >= (first as number) && slot <= (last as number))
        ] as PrivateRedis,
      destroy: async () => {
        await Promise.all(masters.map((master) => master.destroy()));
      },
    };
  } catch (error) {
    await Promise.all(masters.map((master) => master.destroy()));
    throw error;
  }
}

/**
 * Starts one more cluster-enabled redis-server and joins it to `cluster` as a master without
 * slots (so clients do not connect to it until a slot moves there). Resolves with it and its
 * node id once every node knows it.
 */
export async function joinEmptyMaster(
  cluster: PrivateCluster,
  configLines: string[] = [],
): Promise<{ server: PrivateRedis; nodeId: string }> {
  const busPort = await closedPort();
  const server = await startPrivateRedis([
    "cluster-enabled yes",
    "cluster-config-file nodes.conf",
    "cluster-node-timeout 5000",
    `cluster-port ${busPort}`,
    ...configLines,
  ]);
  try {
    const nodeId = String(await withRawClient(server.port, (client) => client.call("CLUSTER", "MYID")));
    await withRawClient((cluster.masters[0] as PrivateRedis).port, (client) =>
      client.call("CLUSTER", "MEET", "127.0.0.1", String(server.port), String(busPort)),
    );
    const everyNode = [...cluster.masters, server];
    const deadline = Date.now() + 30_000;
    for (;;) {
      const infos = await Promise.all(
        everyNode.map((node) =>
          withRawClient(node.port, (client) => client.call("CLUSTER", "INFO") as Promise<string>),
        ),
      );
      // Known is not enough: a node that still has the new one in handshake, or not yet as a
      // master, refuses CLUSTER SETSLOT ... NODE for it ("Target node is not a master").
      const views = await Promise.all(
        everyNode.map((node) =>
          withRawClient(node.port, (client) => client.call("CLUSTER", "NODES") as Promise<string>),
        ),
      );
      const seenAsMaster = views.every((view) =>
        view.split("\n").some((line) => {
          const [id, , flags = ""] = line.split(" ");
          const flagList = flags.split(",");
          return (
            id === nodeId &&
            flagList.includes("master") &&
            !flagList.includes("handshake") &&
            !flagList.includes("noaddr")
          );
        }),
      );
      if (seenAsMaster && infos.every((info) => info.includes(`cluster_known_nodes:${everyNode.length}`))) break;
      if (Date.now() > deadline) throw new Error("the new cluster node was not known to every node within 30 s");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { server, nodeId };
  } catch (error) {
    await server.destroy();
    throw error;
  }
}

/** Runs `body` with a plain client on 127.0.0.1:`port`, closed afterwards. */
export async function withRawClient<T>(port: number, body: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null });
  client.on("error", () => {});
  try {
    await client.connect();
    return await body(client);
  } finally {
    client.disconnect();
  }
}

async function waitForClusterOk(masters: readonly PrivateRedis[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = "";
  while (Date.now() < deadline) {
    const infos = await Promise.all(
      masters.map((master) =>
        withRawClient(master.port, (client) => client.call("CLUSTER", "INFO") as Promise<string>),
      ),
    );
    if (
      infos.every((info) => info.includes("cluster_state:ok") && info.includes(`cluster_known_nodes:${masters.length}`))
    ) {
      return;
    }
    last = infos.map((info) => info.split("\r\n").slice(0, 1).join(" ")).join("; ");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the private cluster did not reach cluster_state:ok within 30 s: ${last}`);
}
