import { BackendUnavailableError, PersistError, type PersistErrorContext } from "@persist-kit/core";
import type { Cluster, Redis } from "ioredis";
import type { RedisClient } from "./connection.js";

/** What one Redis server does to keep acknowledged writes. */
export interface RedisServerDurability {
  /** `host:port` (or the socket path) of the server. */
  address: string;
  /** `redis_version` from `INFO`. */
  version: string;
  /** `master`, or `slave` for a replica (`INFO replication`). */
  role: string;
  /** Whether the append-only file is on (`aof_enabled` in `INFO persistence`; needs no CONFIG). */
  appendOnly: boolean;
  /** `always`, `everysec` or `no` (`CONFIG GET appendfsync`); `undefined` where the server refuses CONFIG. */
  appendFsync: string | undefined;
  /** RDB snapshot rules (`CONFIG GET save`), `""` for none; `undefined` where the server refuses CONFIG. */
  snapshotRules: string | undefined;
  /** Replicas connected to this server (`connected_slaves`). */
  connectedReplicas: number;
  /** Whether the server has `WAITAOF` (Redis 7.2 and later). */
  supportsWaitAof: boolean;
}

/** The answer of `PersistRedis.describeDurability()`. */
export interface RedisDurabilityReport {
  /** The server, or every master of a cluster. */
  servers: RedisServerDurability[];
  /**
   * True when every acknowledged write is fsynced to an append-only file before the write
   * resolves: `appendonly yes` with `appendfsync always` on every server, or `waitForAof` on
   * servers that have `WAITAOF`.
   */
  crashSafe: boolean;
  /** What can lose acknowledged writes, and what to change; empty when nothing was found. */
  warnings: string[];
}

/** The waits configured on a backend. */
export interface DurabilityWaits {
  replicas: number;
  aof: boolean;
  timeoutMs: number;
}

/** The command sent right after each change, on the same connection, and what it must report. */
export interface WaitCommand {
  name: "wait" | "waitaof";
  args: number[];
  replicas: number;
  local: boolean;
  timeoutMs: number;
}

/** The servers that hold the data: the single server, or every master of a cluster (in address order). */
export function dataServers(client: RedisClient): Redis[] {
  if (!client.isCluster) return [client as Redis];
  return (client as Cluster).nodes("master").sort((a, b) => (addressOf(a) < addressOf(b) ? -1 : 1));
}

/** Reads one server's persistence settings with `INFO` and, where allowed, `CONFIG GET`. */
export async function readServerDurability(server: Redis): Promise<RedisServerDurability> {
  const [info, appendFsync, snapshotRules] = await Promise.all([
    server.info().then(parseInfo),
    readConfig(server, "appendfsync"),
    readConfig(server, "save"),
  ]);
  const version = info.get("redis_version") ?? "unknown";
  return {
    address: addressOf(server),
    version,
    role: info.get("role") ?? "unknown",
    appendOnly: info.get("aof_enabled") === "1",
    appendFsync,
    snapshotRules,
    connectedReplicas: Number(info.get("connected_slaves") ?? 0),
    supportsWaitAof: versionAtLeast(version, [7, 2]),
  };
}

/** Judges the servers' settings together with the waits a backend was given. */
export function describeServers(servers: RedisServerDurability[], waits: DurabilityWaits): RedisDurabilityReport {
  return {
    servers,
    crashSafe: servers.length > 0 && servers.every((server) => fsyncsEachWrite(server, waits)),
    warnings: servers.flatMap((server) => serverWarnings(server, waits)),
  };
}

/**
 * The wait to send after each change, or `undefined` for none. `waitForAof` uses `WAITAOF` where
 * every server has it; on older servers it is honoured only when `appendfsync always` already
 * fsyncs before the reply, and otherwise refused here, before anything is written.
 */
export function planWait(
  servers: RedisServerDurability[],
  waits: DurabilityWaits,
  context: PersistErrorContext,
): WaitCommand | undefined {
  const { replicas, timeoutMs } = waits;
  // Refused before the change is sent.
  const refused: PersistErrorContext = { ...context, outcome: "not-applied" };
  if (!waits.aof) {
    return replicas === 0
      ? undefined
      : { name: "wait", args: [replicas, timeoutMs], replicas, local: false, timeoutMs };
  }
  for (const server of servers) {
    if (!server.appendOnly) {
      throw new PersistError(`waitForAof needs appendonly yes, but ${server.address} has appendonly no`, refused);
    }
  }
  if (servers.every((server) => server.supportsWaitAof)) {
    return { name: "waitaof", args: [1, replicas, timeoutMs], replicas, local: true, timeoutMs };
  }
  for (const server of servers) {
    if (!server.supportsWaitAof && server.appendFsync !== "always") {
      throw new PersistError(
        `waitForAof needs WAITAOF (Redis >= 7.2) or appendfsync always, but ${server.address} runs ${server.version} ` +
          `with appendfsync ${server.appendFsync ?? "unknown (CONFIG GET is refused)"}`,
        refused,
      );
    }
  }
  // appendfsync always: the server fsyncs before it replies, so only the replicas are waited for.
  return replicas === 0 ? undefined : { name: "wait", args: [replicas, timeoutMs], replicas, local: false, timeoutMs };
}

/** Throws {@link BackendUnavailableError} when the reply of `WAIT`/`WAITAOF` falls short. */
export function checkWaitReply(reply: unknown, wait: WaitCommand, context: PersistErrorContext): void {
  const [local, replicas] = wait.name === "wait" ? [1, Number(reply)] : (reply as number[]).map(Number);
  const shortfall =
    wait.local && local !== 1
      ? "was not fsynced to the append-only file"
      : (replicas ?? 0) < wait.replicas
        ? `reached ${replicas} of ${wait.replicas} replicas`
        : undefined;
  if (shortfall === undefined) return;
  throw new BackendUnavailableError(
    `the change was applied but ${shortfall} within ${wait.timeoutMs} ms (${wait.name.toUpperCase()}); ` +
      "it may be lost if the server fails now",
    context,
  );
}

function fsyncsEachWrite(server: RedisServerDurability, waits: DurabilityWaits): boolean {
  return server.appendOnly && (server.appendFsync === "always" || (waits.aof && server.supportsWaitAof));
}

function serverWarnings(server: RedisServerDurability, waits: DurabilityWaits): string[] {
  const at = server.address;
  const warnings: string[] = [];
  if (server.role !== "master") warnings.push(`${at} is not a master (role ${server.role}): writes to it fail`);
  if (!server.appendOnly) {
    warnings.push(
      server.snapshotRules === ""
        ? `${at}: appendonly no and no RDB snapshots: a restart loses every signal; set appendonly yes`
        : `${at}: appendonly no: a crash loses every write since the last RDB snapshot; set appendonly yes`,
    );
  } else if (!fsyncsEachWrite(server, waits)) {
    warnings.push(`${at}: ${fsyncWarning(server.appendFsync)}`);
  }
  if (waits.replicas > server.connectedReplicas) {
    warnings.push(
      `${at}: waitForReplicas is ${waits.replicas} but ${server.connectedReplicas} replicas are connected: ` +
        "every write will fail",
    );
  }
  return warnings;
}

function fsyncWarning(appendFsync: string | undefined): string {
  switch (appendFsync) {
    case "everysec":
      return (
        "appendfsync everysec: a power loss or OS crash can lose about the last second of acknowledged writes " +
        "(a crash of redis-server alone loses none); set appendfsync always, or waitForAof on Redis >= 7.2"
      );
    case "no":
      return "appendfsync no: the OS writes the file when it likes, so a power loss or OS crash can lose many seconds of writes; set appendfsync always";
    case undefined:
      return "appendfsync cannot be read (CONFIG GET is refused), so whether writes are fsynced is unknown; ask the provider, or use waitForAof on Redis >= 7.2";
    default:
      return `appendfsync ${appendFsync} is not known to fsync each write; set appendfsync always`;
  }
}

function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const separator = line.indexOf(":");
    if (separator > 0 && !line.startsWith("#")) fields.set(line.slice(0, separator), line.slice(separator + 1));
  }
  return fields;
}

// Managed services often rename or forbid CONFIG: the setting is then unknown, not an error.
async function readConfig(server: Redis, parameter: string): Promise<string | undefined> {
  try {
    const reply = (await server.config("GET", parameter)) as unknown as string[];
    return reply[1];
  } catch (error) {
    if (error instanceof Error && error.name === "ReplyError") return undefined;
    throw error;
  }
}

function addressOf(server: Redis): string {
  const { host, port, path } = server.options;
  return path ? path : `${host}:${port}`;
}

function versionAtLeast(version: string, minimum: [number, number]): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major > minimum[0] || (major === minimum[0] && minor >= minimum[1]);
}
