import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runPersistContract } from "@persist-kit/contract";
import { PersistFile, signalFilePath } from "@persist-kit/persist-file";
import { afterAll, beforeAll, describe, it } from "vitest";
import { readStoredValue, writeStoredValue } from "./stored-files.js";

// The whole contract twice: with the I/O threads (the default) and with writes on the calling
// thread (`writeThreads: 0`, for bundled applications).
for (const writeThreads of [undefined, 0]) {
  let root = "";
  runPersistContract(
    { describe, it, beforeAll, afterAll },
    {
      name: writeThreads === undefined ? "file" : "file (writeThreads: 0)",
      setup: async () => {
        root = await mkdtemp(path.join(tmpdir(), "persist-file-contract-"));
      },
      create: async ({ ttlMs }) =>
        new PersistFile({ baseDir: await mkdtemp(path.join(root, "store-")), ttlMs, writeThreads }),
      teardown: () => rm(root, { recursive: true, force: true }),
      raw: {
        read: (backend, symbol, strategyName) =>
          readStoredValue(signalFilePath(backend.baseDir, { strategyName, symbol })),
        write: (backend, symbol, strategyName, text) =>
          writeStoredValue(signalFilePath(backend.baseDir, { strategyName, symbol }), text),
      },
      worker: {
        module: fileURLToPath(new URL("./fixtures/file-worker.mjs", import.meta.url)),
        options: (backend) => ({ baseDir: backend.baseDir, writeThreads }),
      },
      ttl: true,
    },
    { killTrials: writeThreads === undefined ? 200 : 50 },
  );
}
