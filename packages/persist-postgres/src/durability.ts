/** What one PostgreSQL server, as one connection sees it, does to keep acknowledged writes. */
export interface PostgresServerDurability {
  /** `host:port` (or the socket path) of the server. */
  address: string;
  /** `server_version`. */
  version: string;
  /** `synchronous_commit` of the session: its role's, database's or own setting, else the server's. */
  synchronousCommit: string;
  /** `synchronous_standby_names`: `""` when commits wait for no standby. */
  synchronousStandbyNames: string;
  /** `fsync`. */
  fsync: boolean;
  /** `full_page_writes`. */
  fullPageWrites: boolean;
}

/** The answer of `PersistPostgres.describeDurability()`. */
export interface PostgresDurabilityReport {
  /** The server the backend's connections reach. */
  servers: PostgresServerDurability[];
  /**
   * True when every acknowledged write is flushed to the WAL before it resolves and recovery can
   * replay it: `fsync` and `full_page_writes` on, `synchronous_commit` not `off` (and not `local`
   * when synchronous standbys are configured).
   */
  crashSafe: boolean;
  /** What can lose acknowledged writes, and what to change; empty when nothing was found. */
  warnings: string[];
}

/** One setting that can lose acknowledged writes. */
export interface DurabilityProblem {
  /** The server's {@link PostgresServerDurability.address}. */
  address: string;
  setting: "synchronous_commit" | "fsync" | "full_page_writes";
  value: string;
  /** Names the server and the setting, and says what to change. */
  message: string;
}

/**
 * Reads what decides durability for the session that runs it (one round trip); every role may
 * read these settings. Columns: `version`, `synchronous_commit`, `synchronous_standby_names`,
 * `fsync`, `full_page_writes`.
 */
export const DURABILITY_SETTINGS_SQL = `SELECT current_setting('server_version') AS version,
  current_setting('synchronous_commit') AS synchronous_commit,
  current_setting('synchronous_standby_names') AS synchronous_standby_names,
  current_setting('fsync') AS fsync, current_setting('full_page_writes') AS full_page_writes`;

/** The settings of one answer of {@link DURABILITY_SETTINGS_SQL}, for the server at `address`. */
export function serverDurability(address: string, row: Record<string, string>): PostgresServerDurability {
  return {
    address,
    version: row.version ?? "unknown",
    synchronousCommit: row.synchronous_commit ?? "unknown",
    synchronousStandbyNames: row.synchronous_standby_names ?? "",
    fsync: row.fsync === "on",
    fullPageWrites: row.full_page_writes === "on",
  };
}

/** `host:port`, or the socket file for a host that is a directory. */
export function serverAddress(host: string | undefined, port: number | undefined): string {
  const where = host ?? "localhost";
  return where.startsWith("/") ? `${where}/.s.PGSQL.${port ?? 5432}` : `${where}:${port ?? 5432}`;
}

/** Judges the settings of each server: the report of `describeDurability()`. */
export function describeServers(servers: PostgresServerDurability[]): PostgresDurabilityReport {
  const warnings = servers.flatMap((server) => durabilityProblems(server).map((problem) => problem.message));
  return { servers, crashSafe: servers.length > 0 && warnings.length === 0, warnings };
}

/** The settings of `server` that can lose acknowledged writes, each with what to change. */
export function durabilityProblems(server: PostgresServerDurability): DurabilityProblem[] {
  const at = server.address;
  const problems: DurabilityProblem[] = [];
  if (server.synchronousCommit === "off") {
    problems.push({
      address: at,
      setting: "synchronous_commit",
      value: "off",
      message:
        `${at}: synchronous_commit is off: a crash of the server loses the writes acknowledged in the last ` +
        "moments (up to about 3 × wal_writer_delay); set synchronous_commit = on, and look for ALTER ROLE or " +
        "ALTER DATABASE ... SET synchronous_commit",
    });
  } else if (server.synchronousCommit === "local" && server.synchronousStandbyNames !== "") {
    problems.push({
      address: at,
      setting: "synchronous_commit",
      value: "local",
      message:
        `${at}: synchronous_commit is local while synchronous_standby_names is '${server.synchronousStandbyNames}': ` +
        "commits do not wait for a standby, so a failover can lose acknowledged writes; set synchronous_commit = on " +
        "(or remote_apply)",
    });
  }
  if (!server.fsync) {
    problems.push({
      address: at,
      setting: "fsync",
      value: "off",
      message:
        `${at}: fsync is off: a crash of the machine or its operating system can lose acknowledged writes and ` +
        "corrupt the database; set fsync = on",
    });
  }
  if (!server.fullPageWrites) {
    problems.push({
      address: at,
      setting: "full_page_writes",
      value: "off",
      message:
        `${at}: full_page_writes is off: a crash of the machine in the middle of a page write can leave a torn ` +
        "page that recovery cannot repair; set full_page_writes = on",
    });
  }
  return problems;
}
