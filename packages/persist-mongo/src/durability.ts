import { InvalidOptionError, NotDurableError, reportWarning } from "@persist-kit/core";
import type { MongoClient, WriteConcernSettings } from "mongodb";
import { isUnavailableError } from "./errors.js";

const BACKEND = "mongo";
// `journal: true` is the driver's spelling of `j: true`: acknowledged once in the on-disk journal.
const DEFAULT_WRITE_CONCERN: WriteConcernSettings = { w: "majority", journal: true };

/** The write concern every insert and delete of a store is sent with. */
export interface MongoWriteConcern {
  /** `"majority"`, a number of members, or the name of a tag set; `undefined`: the server's default. */
  w: number | string | undefined;
  /** `j`: acknowledged only once the change is in the server's on-disk journal; `undefined`: the server's default. */
  journal: boolean | undefined;
}

/** What one server does to keep acknowledged changes, as far as the MongoDB protocol tells. */
export interface MongoServerDurability {
  /** `host:port` of the server the store writes to (`hello.me`, else the hosts of the connection string). */
  address: string;
  /** `"ferretdb"` when `buildInfo` names a FerretDB version, else `"mongodb"`. */
  product: "mongodb" | "ferretdb";
  /** `buildInfo.version`, or FerretDB's own version (`buildInfo.ferretdbVersion`). */
  version: string;
  /** `primary` or `secondary` of a replica set, `standalone`, `mongos` (a sharded cluster), or `other`. */
  role: "primary" | "secondary" | "standalone" | "mongos" | "other";
  /** The replica set's name (`hello.setName`); `undefined` outside a replica set. */
  replicaSet: string | undefined;
  /** Data-bearing members `hello` lists (`hosts` and `passives`); 1 outside a replica set. */
  members: number;
  /** `serverStatus.storageEngine.name`; `undefined` when the server has none or refuses `serverStatus`. */
  storageEngine: string | undefined;
  /** Whether the storage engine keeps data on disk (`serverStatus.storageEngine.persistent`); `undefined` when unknown. */
  persistent: boolean | undefined;
}

/** The answer of `describeDurability()`, shaped like persist-redis' `RedisDurabilityReport`. */
export interface MongoDurabilityReport {
  /** The server the store writes to. */
  servers: MongoServerDurability[];
  /** The write concern every insert and delete is sent with. */
  writeConcern: MongoWriteConcern;
  /**
   * True when every acknowledged change is in the on-disk journal of a majority of the replica set
   * (or of the single server) before it resolves: `w: "majority"` with `j: true`, on MongoDB with a
   * persistent storage engine. False also when that cannot be told (FerretDB, a mongos).
   */
  crashSafe: boolean;
  /** What can lose acknowledged changes, and what to change; empty when nothing was found. */
  warnings: string[];
}

/**
 * The write concern a store sends: `writeConcern` over the default `{ w: "majority", journal: true }`,
 * field by field, as the driver resolves it for the collection. Throws {@link InvalidOptionError}
 * for a write concern of the wrong shape and for `w: 0`: an unacknowledged insert never learns
 * whether it won the race for its `_id`, and every condition and fence rests on that answer.
 */
export function resolveWriteConcern(
  client: MongoClient,
  databaseName: string,
  collectionName: string,
  writeConcern: unknown,
): { settings: WriteConcernSettings; resolved: MongoWriteConcern } {
  checkShape(writeConcern);
  const settings: WriteConcernSettings = { ...DEFAULT_WRITE_CONCERN, ...writeConcern };
  // The driver's own resolution (numeric strings, `j`, `journal` and `fsync`) is what it sends.
  const sent = client.db(databaseName).collection(collectionName, { writeConcern: settings }).writeConcern;
  const resolved: MongoWriteConcern = { w: sent?.w, journal: sent?.journal };
  if (resolved.w === 0) {
    throw new InvalidOptionError(
      "writeConcern w: 0 is refused: an unacknowledged insert never learns whether it won the race for its _id, " +
        'so conditions and fencing would not hold; use w: "majority"',
      { backend: BACKEND, operation: "create" },
    );
  }
  return { settings, resolved };
}

/**
 * Reports each setting of `writeConcern` that can lose acknowledged changes through core's
 * `reportWarning`, or, with `requireDurable`, refuses them all with {@link NotDurableError}.
 */
export function checkDurableSettings(writeConcern: MongoWriteConcern, requireDurable: boolean): void {
  const warnings = writeConcernWarnings(writeConcern);
  if (warnings.length === 0) return;
  if (requireDurable) {
    throw new NotDurableError(`requireDurable refuses this write concern: ${warnings.join("; ")}`, {
      backend: BACKEND,
      operation: "create",
    });
  }
  for (const message of warnings) {
    reportWarning({ backend: BACKEND, kind: "durability", message, details: { writeConcern } });
  }
}

/** Reads what the server the store writes to does to keep changes: `hello`, `buildInfo`, `serverStatus`. */
export async function readServerDurability(client: MongoClient): Promise<MongoServerDurability> {
  const admin = client.db("admin");
  const [hello, build, status] = await Promise.all([
    admin.command({ hello: 1 }),
    admin.command({ buildInfo: 1 }),
    // Needs the clusterMonitor role; a refusal leaves the storage engine unknown, not an error.
    admin.command({ serverStatus: 1 }).catch((error: unknown) => {
      if (isUnavailableError(error)) throw error;
      return undefined;
    }),
  ]);
  const engine = status?.storageEngine as { name?: unknown; persistent?: unknown } | undefined;
  const ferretDbVersion = build.ferretdbVersion;
  const replicaSet = typeof hello.setName === "string" ? hello.setName : undefined;
  return {
    address: typeof hello.me === "string" ? hello.me : client.options.hosts.map(String).join(","),
    product: ferretDbVersion === undefined ? "mongodb" : "ferretdb",
    version: String(ferretDbVersion ?? build.version ?? "unknown"),
    role: roleOf(hello, replicaSet),
    replicaSet,
    members: replicaSet === undefined ? 1 : countOf(hello.hosts) + countOf(hello.passives),
    storageEngine: typeof engine?.name === "string" ? engine.name : undefined,
    persistent: typeof engine?.persistent === "boolean" ? engine.persistent : undefined,
  };
}

/** Judges the servers together with the write concern the store sends. */
export function describeServers(
  servers: MongoServerDurability[],
  writeConcern: MongoWriteConcern,
): MongoDurabilityReport {
  const settings = writeConcernWarnings(writeConcern);
  return {
    servers,
    writeConcern,
    crashSafe: settings.length === 0 && servers.length > 0 && servers.every(keepsAcknowledgedChanges),
    warnings: [...settings, ...servers.flatMap((server) => serverWarnings(server, writeConcern))],
  };
}

function checkShape(writeConcern: unknown): asserts writeConcern is WriteConcernSettings | undefined {
  if (writeConcern === undefined) return;
  const refuse = (problem: string): never => {
    throw new InvalidOptionError(`writeConcern ${problem}`, { backend: BACKEND, operation: "create" });
  };
  if (typeof writeConcern !== "object" || writeConcern === null || Array.isArray(writeConcern)) {
    refuse(`must be an object like { w: "majority", journal: true }, got ${JSON.stringify(writeConcern)}`);
  }
  const { w, j, journal, fsync, wtimeout, wtimeoutMS } = writeConcern as Record<string, unknown>;
  const wholeW = typeof w === "number" && Number.isSafeInteger(w) && w >= 0;
  if (w !== undefined && !wholeW && !(typeof w === "string" && w !== "")) {
    refuse(`w must be "majority", a whole number of members or a tag set's name, got ${JSON.stringify(w)}`);
  }
  for (const [name, value] of Object.entries({ j, journal, fsync })) {
    if (value !== undefined && typeof value !== "boolean")
      refuse(`${name} must be true or false, got ${JSON.stringify(value)}`);
  }
  for (const [name, value] of Object.entries({ wtimeout, wtimeoutMS })) {
    if (value !== undefined && !(Number.isSafeInteger(value) && (value as number) >= 0)) {
      refuse(`${name} must be a whole number of milliseconds, got ${JSON.stringify(value)}`);
    }
  }
}

function writeConcernWarnings({ w, journal }: MongoWriteConcern): string[] {
  const warnings: string[] = [];
  if (w !== "majority") {
    const setting = w === undefined ? "has no w (the server's default applies)" : `w: ${JSON.stringify(w)}`;
    warnings.push(
      `writeConcern ${setting}: a change acknowledged before a majority of the replica set has it can be rolled ` +
        'back by a failover; use w: "majority" (on a single server it costs the same)',
    );
  }
  if (journal !== true) {
    warnings.push(
      `writeConcern j: ${journal ?? "unset"}: a change acknowledged before it is in the server's on-disk journal ` +
        "is lost if the server crashes; use j: true",
    );
  }
  return warnings;
}

function keepsAcknowledgedChanges(server: MongoServerDurability): boolean {
  return (
    server.product === "mongodb" &&
    server.persistent === true &&
    (server.role === "primary" || server.role === "standalone")
  );
}

function serverWarnings(server: MongoServerDurability, { w }: MongoWriteConcern): string[] {
  const at = server.address;
  const warnings: string[] = [];
  if (server.product === "ferretdb") {
    warnings.push(
      `${at}: FerretDB ignores the write concern: an acknowledged change is as safe as FerretDB's storage ` +
        "(SQLite or PostgreSQL) is configured, which the MongoDB protocol does not show; run SQLite with " +
        "synchronous=FULL, or PostgreSQL with fsync and synchronous_commit on",
    );
    return warnings;
  }
  if (server.role === "mongos") {
    warnings.push(`${at} is a mongos: the shards' storage cannot be read through it; check each shard's primary`);
    return warnings;
  }
  if (server.role !== "primary" && server.role !== "standalone") {
    warnings.push(`${at} is not a writable primary (${server.role}): changes sent to it fail`);
  }
  if (server.persistent === false) {
    warnings.push(
      `${at}: storage engine ${server.storageEngine ?? "unknown"} keeps data in memory only: a restart loses every record`,
    );
  } else if (server.persistent === undefined) {
    warnings.push(
      `${at}: serverStatus is refused, so whether the storage engine keeps data on disk is unknown; grant clusterMonitor`,
    );
  }
  if (typeof w === "number" && w > server.members) {
    warnings.push(
      `${at}: w: ${w} but the replica set lists ${server.members} data-bearing members: every change fails`,
    );
  }
  return warnings;
}

function roleOf(hello: Record<string, unknown>, replicaSet: string | undefined): MongoServerDurability["role"] {
  if (hello.msg === "isdbgrid") return "mongos";
  if (replicaSet === undefined) return hello.isWritablePrimary === true ? "standalone" : "other";
  if (hello.isWritablePrimary === true) return "primary";
  return hello.secondary === true ? "secondary" : "other";
}

function countOf(list: unknown): number {
  return Array.isArray(list) ? list.length : 0;
}
