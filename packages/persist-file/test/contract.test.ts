import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runPersistContract } from "@persist-kit/contract";
import { PersistFile, signalFilePath } from "@persist-kit/persist-file";
import { afterAll, beforeAll, describe, it } from "vitest";

let root = "";

// What the file holds for the key: the row's JSON, unwrapped from the {expiresAt, signal} wrapper
// a backend with a TTL writes.
async function readStoredRow(backend: PersistFile, symbol: string, strategyName: string): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(signalFilePath(backend.baseDir, symbol, strategyName), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  let stored: unknown;
  try {
    stored = JSON.parse(text);
  } catch {
    return text; // corrupt data, returned as it is
  }
  const isWrapper =
    typeof stored === "object" && stored !== null && Object.keys(stored).sort().join() === "expiresAt,signal";
  return isWrapper ? JSON.stringify((stored as { signal: unknown }).signal) : text;
}

runPersistContract(
  { describe, it, beforeAll, afterAll },
  {
    name: "file",
    setup: async () => {
      root = await mkdtemp(path.join(tmpdir(), "persist-file-contract-"));
    },
    create: async ({ ttlMs }) => new PersistFile({ baseDir: await mkdtemp(path.join(root, "store-")), ttlMs }),
    teardown: () => rm(root, { recursive: true, force: true }),
    raw: {
      read: readStoredRow,
      write: async (backend, symbol, strategyName, text) => {
        const file = signalFilePath(backend.baseDir, symbol, strategyName);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, text);
      },
    },
    worker: {
      module: fileURLToPath(new URL("./fixtures/file-worker.mjs", import.meta.url)),
      options: (backend) => ({ baseDir: backend.baseDir }),
    },
    ttl: true,
  },
  { killTrials: 200 },
);
