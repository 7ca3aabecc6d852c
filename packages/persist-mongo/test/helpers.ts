import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import type { PersistMongo } from "../src/index.js";

/** A database name no other test run uses, so parallel runs never see each other's documents. */
export function uniqueDatabaseName(purpose: string): string {
  return `persist_kit_${purpose}_${process.pid}_${randomBytes(3).toString("hex")}`;
}

/** A TCP port nothing listens on: taken from the kernel, then released. */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject()));
    });
  });
}

/** Where a backend keeps its documents, for a raw driver client. */
export function namespaceOf(backend: PersistMongo): { databaseName: string; collectionName: string } {
  return { databaseName: backend.databaseName, collectionName: backend.collectionName };
}
