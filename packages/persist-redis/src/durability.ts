import { BackendUnavailableError, NotDurableError, type PersistErrorContext } from "@persist-kit/core";
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

/** The waits configured on a backend, and whether it refuses settings that can lose acknowledged writes. */
export interface DurabilityWaits {
  replicas: number;
  aof: boolean;
  timeoutMs: number;
  requireDurable: boolean;
}

/** How each change is sent: what follows it, and whether the fsync policy is read with it. */
export interface ChangePlan {
  /** `WAIT` or `WAITAOF`, sent right after the change on the same connection; `undefined` for none. */
  wait: WaitCommand | undefined;
  /**
   * Read `appendonly` and `appendfsync` in the change's own transaction (`MULTI`, `CONFIG GET`,
   * the script, `EXEC`): where the server's fsync policy is what makes a write durable, it can
   * be changed at run time (`CONFIG SET`), after the settings were last read.
   */
  verifyFsync: boolean;
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
 * How to send each change, or a {@link NotDurableError} (nothing sent) when the settings cannot
 * give what the backend was told to ensure. `waitForAof` uses `WAITAOF` where every server has
 * it; on older servers it is honoured only under `appendfsync always` (which fsyncs before the
 * reply), read again with every change. `requireDurable` refuses any setting that can lose an
 * acknowledged write (see {@link durabilityRisks}).
 */
export function planChange(
  servers: RedisServerDurability[],
  waits: DurabilityWaits,
  context: PersistErrorContext,
): ChangePlan {
  const { replicas, timeoutMs } = waits;
  // Refused before the change is sent.
  const refused: PersistErrorContext = { ...context, outcome: "not-applied" };
  const replicaWait: WaitCommand | undefined =
    replicas === 0 ? undefined : { name: "wait", args: [replicas, timeoutMs], replicas, local: false, timeoutMs };
  if (waits.aof) {
    for (const server of servers) {
      if (!server.appendOnly) {
        throw new NotDurableError(`waitForAof needs appendonly yes, but ${server.address} has appendonly no`, refused);
      }
    }
    if (servers.every((server) => server.supportsWaitAof)) {
      return {
        wait: { name: "waitaof", args: [1, replicas, timeoutMs], replicas, local: true, timeoutMs },
        verifyFsync: false,
      };
    }
    for (const server of servers) {
      if (server.appendFsync !== "always") {
        throw new NotDurableError(
          `waitForAof needs WAITAOF (Redis >= 7.2) or appendfsync always, but ${server.address} runs ${server.version} ` +
            `with appendfsync ${server.appendFsync ?? "unknown (CONFIG GET is refused)"}`,
          refused,
        );
      }
    }
    // appendfsync always: the server fsyncs before it replies, so only the replicas are waited for.
    return { wait: replicaWait, verifyFsync: true };
  }
  if (waits.requireDurable) {
    const risks = servers.flatMap((server) => durabilityRisks(server, waits));
    if (risks.length > 0) throw new NotDurableError(`requireDurable is set, but ${risks.join("; ")}`, refused);
    return { wait: replicaWait, verifyFsync: true };
  }
  return { wait: replicaWait, verifyFsync: false };
}

/**
 * Checks the `CONFIG GET append*` reply read in a change's transaction: the change was applied,
 * and it is fsynced before the reply only under `appendonly yes` with `appendfsync always`.
 * Throws {@link BackendUnavailableError} otherwise (outcome unknown: it may be lost).
 */
export function checkFsyncReply(reply: unknown, context: PersistErrorContext): void {
  const settings = new Map<string, string>();
  const fields = Array.isArray(reply) ? reply.map(String) : [];
  for (let index = 0; index + 1 < fields.length; index += 2) settings.set(fields[index] ?? "", fields[index + 1] ?? "");
  const appendOnly = settings.get("appendonly");
  const appendFsync = settings.get("appendfsync");
  if (appendOnly === "yes" && appendFsync === "always") return;
  throw new BackendUnavailableError(
    `the change was applied but is not known to be fsynced: the server now runs appendonly ${appendOnly ?? "unknown"} ` +
      `with appendfsync ${appendFsync ?? "unknown"} (changed since its settings were read); it may be lost if the ` +
      "server fails now, and further changes are refused until the settings fsync each write again",
    context,
  );
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

/**
 * The settings of `server` that can lose acknowledged writes in a crash, with what to change;
 * empty when each write is fsynced before it resolves (with this backend's waits).
 */
export function durabilityRisks(server: RedisServerDurability, waits: DurabilityWaits): string[] {
  const at = server.address;
  if (!server.appendOnly) {
    return [
      server.snapshotRules === ""
        ? `${at}: appendonly no and no RDB snapshots: a restart loses every signal; set appendonly yes`
        : `${at}: appendonly no: a crash loses every write since the last RDB snapshot; set appendonly yes`,
    ];
  }
  return fsyncsEachWrite(server, waits) ? [] : [`${at}: ${fsyncWarning(server.appendFsync)}`];
}

function serverWarnings(server: RedisServerDurability, waits: DurabilityWaits): string[] {
  const at = server.address;
  const warnings: string[] = [];
  if (server.role !== "master") warnings.push(`${at} is not a master (role ${server.role}): writes to it fail`);
  warnings.push(...durabilityRisks(server, waits));
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
