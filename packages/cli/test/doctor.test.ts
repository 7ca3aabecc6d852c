// doctor on stores that can lose acknowledged writes: exit status 1, and the report says why.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { getPostgresUrl } from "@persist-kit/tools-test-servers";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "./cli-helpers.js";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe("doctor finds settings that lose acknowledged writes", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it("Redis without the append-only file: exit 1, appendonly named", async () => {
    const port = await freePort();
    const dir = mkdtempSync(join("/tmp", "persist-kit-cli-redis-"));
    const server: ChildProcess = spawn(
      process.env.REDIS_SERVER_BIN ?? "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "no", "--save", ""],
      { stdio: "ignore" },
    );
    cleanups.push(() => {
      server.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    });
    const url = `redis://127.0.0.1:${port}`;
    let ran = await cli(["doctor", url]);
    for (let attempt = 0; ran.status === 2 && attempt < 50; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      ran = await cli(["doctor", url]);
    }
    expect(ran.status, ran.stderr).toBe(1);
    expect(ran.stdout).toMatch(/durability {2}LOSES WRITES/);
    expect(ran.stdout).toMatch(/appendonly/);
  });

  it("PostgreSQL with synchronous_commit = off for the role: exit 1, the setting named", async () => {
    const admin = new pg.Client({ connectionString: await getPostgresUrl() });
    await admin.connect();
    const role = `cli_nosync_${process.pid}`;
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.query(`CREATE ROLE ${role} LOGIN SUPERUSER`);
    await admin.query(`ALTER ROLE ${role} SET synchronous_commit = off`);
    cleanups.push(async () => {
      await admin.query(`DROP OWNED BY ${role}`).catch(() => {});
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    });
    const url = new URL(await getPostgresUrl());
    url.username = role;
    const ran = await cli(["doctor", url.toString()]);
    expect(ran.status, ran.stderr).toBe(1);
    expect(ran.stdout).toMatch(/durability {2}LOSES WRITES/);
    expect(ran.stdout).toMatch(/synchronous_commit/);
    // The backend's own warning, once, as a line of the program's standard error.
    expect(ran.stderr.match(/^warning: \[postgres\] .*synchronous_commit is off/gm)).toHaveLength(1);
    expect(JSON.parse((await cli(["doctor", url.toString(), "--json"])).stdout)).toMatchObject({
      verdict: "loses-writes",
    });
  });

  it("a file store on tmpfs: exit 1, tmpfs named", async () => {
    const dir = mkdtempSync(join("/dev/shm", "persist-kit-cli-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const ran = await cli(["doctor", `file:${join(dir, "data")}`]);
    expect(ran.status, ran.stderr).toBe(1);
    expect(ran.stdout).toMatch(/is on tmpfs \(memory/);
  });
});
