import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closedPort } from "./helpers.js";

const START_TIMEOUT_MS = 15_000;

function ferretDbBinary(): string {
  const binary = process.env.FERRETDB_BIN;
  if (!binary) {
    throw new Error(
      "FERRETDB_BIN is not set: start the test servers with `node tools/services/services.mjs up --only mongo` " +
        "and load their env file (set -a; . .services/env; set +a) before running these tests",
    );
  }
  return binary;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * A FerretDB of this test alone, on its own port and SQLite directory, so the test can kill,
 * pause and restart it without disturbing tests that use the shared server.
 */
export class PrivateFerretDb {
  readonly url: string;
  readonly #binary: string;
  readonly #port: number;
  readonly #sqliteDir: string;
  readonly #tls: { port: number; certFile: string; keyFile: string } | undefined;
  #process: ChildProcess | undefined;

  private constructor(binary: string, port: number, tls?: { port: number; certFile: string; keyFile: string }) {
    this.#binary = binary;
    this.#port = port;
    this.#tls = tls;
    this.#sqliteDir = mkdtempSync(join(tmpdir(), "persist-mongo-ferretdb-"));
    this.url = `mongodb://127.0.0.1:${port}/`;
  }

  /** `tls`: also a TLS listener on a port of its own, with this certificate; `tlsUrl` names it. */
  static async start(tls?: { certFile: string; keyFile: string }): Promise<PrivateFerretDb> {
    const tlsListener = tls === undefined ? undefined : { ...tls, port: await closedPort() };
    const server = new PrivateFerretDb(ferretDbBinary(), await closedPort(), tlsListener);
    await server.restart();
    return server;
  }

  /** Starts the server (again) on the same port and data, and waits until it accepts connections. */
  async restart(): Promise<void> {
    const child = spawn(
      this.#binary,
      [
        "-listen-addr",
        `127.0.0.1:${this.#port}`,
        ...(this.#tls === undefined
          ? []
          : [
              "-listen-tls",
              `127.0.0.1:${this.#tls.port}`,
              "-tls-cert-file",
              this.#tls.certFile,
              "-tls-key-file",
              this.#tls.keyFile,
            ]),
        "-sqlite-dir",
        this.#sqliteDir,
        "-log-level",
        "error",
      ],
      { stdio: "ignore" },
    );
    this.#process = child;
    const started = Date.now();
    while (!(await accepts(this.#port)) || (this.#tls !== undefined && !(await accepts(this.#tls.port)))) {
      if (child.exitCode !== null) throw new Error(`FerretDB exited with ${child.exitCode} at start`);
      if (Date.now() - started > START_TIMEOUT_MS) throw new Error("FerretDB did not listen in time");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The URL of the TLS listener (without the `tls` options a client adds). */
  get tlsUrl(): string {
    if (this.#tls === undefined) throw new Error("this FerretDB was started without TLS");
    return `mongodb://127.0.0.1:${this.#tls.port}/`;
  }

  /** Kills the server like a crash and waits until it is gone. */
  async kill(): Promise<void> {
    const child = this.#process;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  /** Freezes the server: connections stay open, nothing answers. */
  pause(): void {
    this.#process?.kill("SIGSTOP");
  }

  resume(): void {
    this.#process?.kill("SIGCONT");
  }

  async destroy(): Promise<void> {
    this.resume();
    await this.kill();
    rmSync(this.#sqliteDir, { recursive: true, force: true });
  }
}
