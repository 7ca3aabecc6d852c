// The stores the bridge is tested on: every persist-kit backend, each fresh (its own directory,
// prefix, table or database), on the shared test servers.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PersistMemory, type RecordStore } from "@persist-kit/core";
import { PersistFile } from "@persist-kit/persist-file";
import { PersistMongo } from "@persist-kit/persist-mongo";
import { PersistPostgres } from "@persist-kit/persist-postgres";
import { PersistRedis } from "@persist-kit/persist-redis";
import { getMongoUrl, getPostgresUrl, getRedisUrl } from "@persist-kit/tools-test-servers";

export interface TestBackend {
  name: string;
  /** A fresh store, and how to remove what it holds. */
  open(): Promise<{ records: RecordStore; url?: string; destroy(): Promise<void> }>;
}

const unique = () => `${process.pid}_${randomBytes(3).toString("hex")}`;

export const BACKENDS: TestBackend[] = [
  {
    name: "memory",
    async open() {
      const persist = new PersistMemory();
      return { records: persist.records, destroy: () => persist.close() };
    },
  },
  {
    name: "file",
    async open() {
      const baseDir = mkdtempSync(join(tmpdir(), "persist-kit-bridge-"));
      const persist = new PersistFile({ baseDir });
      return {
        records: persist.records,
        url: `file://${baseDir}`,
        async destroy() {
          await persist.close();
          rmSync(baseDir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: "redis",
    async open() {
      const persist = new PersistRedis({ url: await getRedisUrl(), prefix: `bridge_${unique()}:` });
      return { records: persist.records, destroy: () => persist.close() };
    },
  },
  {
    name: "postgres",
    async open() {
      const persist = new PersistPostgres({ connectionString: await getPostgresUrl(), table: `bridge_${unique()}` });
      return { records: persist.records, destroy: () => persist.close() };
    },
  },
  {
    name: "mongo",
    async open() {
      const persist = new PersistMongo(await getMongoUrl(), { databaseName: `bridge_${unique()}` });
      return { records: persist.records, destroy: () => persist.close() };
    },
  },
];
