// A PostgreSQL server of one test's own, in a temporary directory on a free port, so the test can
// stop it like a crash without disturbing the shared server other tests use. Run from the
// binaries in PG_BIN_DIR (written to the env file by tools/services). initdb and postgres refuse
// to run as root, so as root they run as the `postgres` system user, as tools/services does.
import { execFile } from "node:child_process";
import { appendFileSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
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

  private constructor(dir: string, port: number, bin: string) {
    this.#dir = dir;
    this.#dataDir = join(dir, "data");
    this.#binDir = bin;
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }

  /** Creates the cluster with initdb and starts it. */
  static async start(): Promise<PrivatePostgres> {
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
    await server.startAgain();
    return server;
  }

  /** Starts the server on its existing data and waits until it accepts connections. */
  async startAgain(): Promise<void> {
    await this.#asPostgres("pg_ctl", [
      "-D",
      this.#dataDir,
      "-l",
      join(this.#dir, "server.log"),
      "-w",
      "-t",
      "60",
      "start",
    ]);
  }

  /** `pg_ctl stop -m immediate`: no checkpoint, no goodbye to clients; recovery replays the WAL at the next start. */
  async stopImmediately(): Promise<void> {
    await this.#asPostgres("pg_ctl", ["-D", this.#dataDir, "-m", "immediate", "-w", "-t", "60", "stop"]);
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
