// What the PostgreSQL tests share: the server URL, unique names and a port nothing listens on.
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { getPostgresUrl } from "@persist-kit/tools-test-servers";
import pg from "pg";

/** The child-process fixture that opens a backend from JSON options. */
export const WORKER_MODULE = fileURLToPath(new URL("./fixtures/postgres-worker.mjs", import.meta.url));

/** The shared test server (fails, never skips, when none is configured). */
export function testDatabaseUrl(): Promise<string> {
  return getPostgresUrl();
}

/** A schema or table name no other test run uses: `prefix_<pid>_<random>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString("hex")}`;
}

/** A pool for checking the store directly, beside the backend under test. */
export function adminPool(connectionString: string): pg.Pool {
  const pool = new pg.Pool({ connectionString, max: 2 });
  pool.on("error", () => {});
  return pool;
}

/** Drops the schemas a test file created. */
export async function dropSchemas(pool: pg.Pool, schemas: Iterable<string>): Promise<void> {
  for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** A loopback port that was free a moment ago: connecting to it is refused. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port assigned");
  return address.port;
}
