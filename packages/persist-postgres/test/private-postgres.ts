// A PostgreSQL server of one test's own, in a temporary directory on a free port, so the test can
// stop it like a crash without disturbing the shared server other tests use. Run from the
// binaries in PG_BIN_DIR (written to the env file by tools/services). initdb and postgres refuse
// to run as root, so as root they run as the `postgres` system user, as tools/services does.
import { execFile } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { closedPort } from "./postgres-test-env.js";

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((entry) => entry.startsWith("postgres:"));
  if (line === undefined) throw new Error("running as root, but there is no `postgres` system user to run PostgreSQL");
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

function binDir(): string {
  const dir = process.env.PG_BIN_DIR;
  if (dir === undefined || dir === "") {
    throw new Error(
      "PG_BIN_DIR is not set: start the test servers (`node tools/services/services.mjs up --only postgres`) and load their env file",
    );
  }
  return dir;
}

/** A private PostgreSQL with fsync and synchronous_commit on, trust auth on 127.0.0.1. */
export class PrivatePostgres {
  readonly url: string;
  readonly #dir: string;
  readonly #dataDir: string;
  readonly #binDir: string;
  readonly #port: number;

  private constructor(dir: string, port: number, bin: string) {
    this.#dir = dir;
    this.#port = port;
    this.#dataDir = join(dir, "data");
    this.#binDir = bin;
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }

  /**
   * Creates the cluster with initdb and starts it. `hbaRules` go first in pg_hba.conf, before the
   * trust rules, for example to make one role log in with a password.
   */
  static async start(
    options: { hbaRules?: readonly string[]; tls?: { certFile: string; keyFile: string } } = {},
  ): Promise<PrivatePostgres> {
    const bin = binDir();
    const dir = mkdtempSync(join(tmpdir(), "pk-private-postgres-"));
    const port = await closedPort();
    const server = new PrivatePostgres(dir, port, bin);
    if (isRoot) {
      const { uid, gid } = postgresUser();
      chownSync(dir, uid, gid);
    }
    mkdirSync(join(dir, "socket"), { mode: 0o700 });
    if (isRoot) chownSync(join(dir, "socket"), postgresUser().uid, postgresUser().gid);
    await server.#asPostgres("initdb", [
      "-D",
      server.#dataDir,
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync",
      "--no-instructions",
    ]);
    appendFileSync(
      join(server.#dataDir, "postgresql.conf"),
      [
        "",
        "listen_addresses = '127.0.0.1'",
        `port = ${port}`,
        `unix_socket_directories = '${join(dir, "socket")}'`,
        "fsync = on",
        "synchronous_commit = on",
        "full_page_writes = on",
        "",
      ].join("\n"),
    );
    if (options.tls !== undefined) {
      // The server reads its key only when the postgres user owns it and no one else can read it.
      for (const [from, name] of [
        [options.tls.certFile, "server.crt"],
        [options.tls.keyFile, "server.key"],
      ] as const) {
        const to = join(server.#dataDir, name);
        copyFileSync(from, to);
        chmodSync(to, 0o600);
        if (isRoot) chownSync(to, postgresUser().uid, postgresUser().gid);
      }
      appendFileSync(join(server.#dataDir, "postgresql.conf"), "ssl = on\n");
    }
    if (options.hbaRules !== undefined) {
      const hba = join(server.#dataDir, "pg_hba.conf");
      writeFileSync(hba, `${options.hbaRules.join("\n")}\n${readFileSync(hba, "utf8")}`);
    }
    await server.startAgain();
    return server;
  }

  /** Starts the server on its existing data and waits until it accepts connections. */
  async startAgain(): Promise<void> {
    const log = join(this.#dir, "server.log");
    try {
      await this.#asPostgres("pg_ctl", ["-D", this.#dataDir, "-l", log, "-w", "-t", "60", "start"]);
    } catch (error) {
      const tail = readFileSync(log, "utf8").trimEnd().split("\n").slice(-5).join("\n");
      throw new Error(`PostgreSQL did not start; the end of its log:\n${tail}`, { cause: error });
    }
  }

  /** `pg_ctl stop -m immediate`: no checkpoint, no goodbye to clients; recovery replays the WAL at the next start. */
  async stopImmediately(): Promise<void> {
    await this.#asPostgres("pg_ctl", ["-D", this.#dataDir, "-m", "immediate", "-w", "-t", "60", "stop"]);
  }

  /**
   * `kill -9` of the postmaster alone. Its children notice and exit on their own; this waits until
   * they have, since a new postmaster refuses to start beside a child still attached to the old
   * one's shared memory.
   */
  async killPostmaster(): Promise<void> {
    const lockFile = join(this.#dataDir, "postmaster.pid");
    const postmaster = Number(readFileSync(lockFile, "utf8").split("\n")[0]);
    const processes = [postmaster, ...childrenOf(postmaster)];
    process.kill(postmaster, "SIGKILL");
    const deadline = Date.now() + 30_000;
    while (processes.some(isRunning)) {
      if (Date.now() > deadline) throw new Error(`the processes of the killed postmaster ${postmaster} did not exit`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The killed postmaster is adopted by init and stays a zombie until reaped, which some
    // container inits do late or never; a new postmaster takes a zombie's pid in its lock files
    // for a live one and refuses to start. Nothing of the old server runs any more.
    rmSync(lockFile, { force: true });
    rmSync(join(this.#dir, "socket", `.s.PGSQL.${this.#port}.lock`), { force: true });
  }

  /** Stops the server if it runs and removes its directory. */
  async destroy(): Promise<void> {
    await this.stopImmediately().catch(() => {});
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #asPostgres(command: string, args: string[]): Promise<void> {
    const path = join(this.#binDir, command);
    const [file, argv] = isRoot
      ? ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", path, ...args]]
      : [path, args];
    await run(file, argv, { cwd: this.#dir, timeout: 90_000 });
  }
}

// Linux's /proc: the field after the command name (in parentheses, which may hold spaces) is
// the state, then the parent's pid.
function statusOf(pid: number): { state: string; parent: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const [state, parent] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: state ?? "", parent: Number(parent) };
}

function childrenOf(parent: number): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => statusOf(pid)?.parent === parent);
}

// An exited child of a killed postmaster stays a zombie until whoever adopted it reaps it.
function isRunning(pid: number): boolean {
  const status = statusOf(pid);
  return status !== undefined && status.state !== "Z";
}
