import { execFileSync, spawn } from "node:child_process";
import { lstat, mkdir, mkdtemp, readdir, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { RecordKey } from "@persist-kit/core";
import { FileRecordStore, recordLocation } from "@persist-kit/persist-file";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Files this backend never makes, planted at the names it reads: each operation runs in a child
// process, so one that blocks forever (an open of a FIFO, a lock loop) is killed instead of
// hanging the test run, and its CPU time can be measured.

const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
const KEY: RecordKey = { namespace: "risk", parts: ["grp", "k"] };
const OPERATIONS = ["read", "write", "delete"] as const;
const LOCK_TIMEOUT_MS = 1_000;
const CHILD_TIMEOUT_MS = 8_000;
// Each test runs up to three children, each bounded by CHILD_TIMEOUT_MS.
const TEST_TIMEOUT_MS = 4 * CHILD_TIMEOUT_MS;

let root = "";

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "persist-file-planted-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface ChildResult {
  name?: string;
  outcome?: string;
  message?: string;
  result?: unknown;
  /** Wall time of the operation alone. */
  ms: number;
  /** CPU time (user + system, every thread) of the operation alone. */
  cpuMs: number;
  maxRssMb: number;
}

/**
 * Runs one operation on the key in a new Node process (after a ping, so the I/O thread has
 * started and the sweep has run); `"timeout"` when it was still running after the child timeout.
 */
function operationInChild(
  baseDir: string,
  op: (typeof OPERATIONS)[number],
  options: Record<string, unknown> = {},
): Promise<ChildResult | "timeout"> {
  const source = `
    import { FileRecordStore } from "@persist-kit/persist-file";
    // Outlives no parent: a child stuck in a system call still ends (exit ends every thread).
    setTimeout(() => process.exit(3), ${CHILD_TIMEOUT_MS + 1_000}).unref();
    const [baseDir, op, options, key] = process.argv.slice(1);
    const store = new FileRecordStore({ baseDir, ...JSON.parse(options) });
    await store.ping();
    const k = JSON.parse(key);
    const cpu = process.cpuUsage();
    const started = performance.now();
    let report;
    try {
      const result = op === "read" ? await store.read(k) : op === "write" ? await store.write(k, "{}") : await store.delete(k, { condition: { revision: 0 } });
      report = { result };
    } catch (error) {
      report = { name: error.name, outcome: error.outcome, message: error.message };
    }
    const used = process.cpuUsage(cpu);
    report.ms = performance.now() - started;
    report.cpuMs = (used.user + used.system) / 1000;
    report.maxRssMb = process.resourceUsage().maxRSS / 1024;
    process.stdout.write(JSON.stringify(report));
    await store.close();`;
  const child = spawn(
    process.execPath,
    ["--input-type=module", "-e", source, baseDir, op, JSON.stringify(options), JSON.stringify(KEY)],
    { cwd: PACKAGE_DIR, stdio: ["ignore", "pipe", "inherit"] },
  );
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve("timeout");
    }, CHILD_TIMEOUT_MS);
    child.on("error", reject);
    child.on("exit", () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(stdout) as ChildResult);
      } catch {
        reject(new Error(`the child printed no report: ${stdout}`));
      }
    });
  });
}

/** A new store directory, with the key's group directory made and `plant` run on its files. */
async function plantedStore(plant: (paths: { file: string; keyLock: string }) => Promise<void>): Promise<string> {
  const baseDir = await mkdtemp(path.join(root, "store-"));
  const { file, directory } = recordLocation(baseDir, KEY);
  await mkdir(directory, { recursive: true });
  await plant({ file, keyLock: path.join(directory, `.${path.basename(file, ".json")}.lk`) });
  return baseDir;
}

const mkfifo = async (file: string) => {
  execFileSync("mkfifo", [file]);
};

describe.skipIf(process.platform === "win32")(
  "only regular files are read: nothing planted at a record or lock path blocks an operation",
  () => {
    it(
      "a FIFO at the record file: read, write and delete fail at once with CorruptDataError naming the key and the file, which stays",
      async () => {
        const baseDir = await plantedStore(({ file }) => mkfifo(file));
        const { file } = recordLocation(baseDir, KEY);
        for (const op of OPERATIONS) {
          const result = await operationInChild(baseDir, op, { lockTimeoutMs: LOCK_TIMEOUT_MS });
          expect(result, op).not.toBe("timeout");
          expect(result, op).toMatchObject({ name: "CorruptDataError", outcome: "not-applied" });
          const { message, ms } = result as ChildResult;
          expect(message).toContain('risk/"grp"/"k"');
          expect(message).toContain(file);
          expect(message).toContain("FIFO");
          expect(ms).toBeLessThan(LOCK_TIMEOUT_MS);
        }
        expect((await lstat(file)).isFIFO()).toBe(true);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "a FIFO at the key's lock file: write and delete fail at once with CorruptDataError naming it; read is not affected",
      async () => {
        let keyLock = "";
        const baseDir = await plantedStore(async (paths) => {
          keyLock = paths.keyLock;
          await mkfifo(keyLock);
        });
        expect(await operationInChild(baseDir, "read")).toMatchObject({ result: { found: false, revision: 0 } });
        for (const op of ["write", "delete"] as const) {
          const result = await operationInChild(baseDir, op, { lockTimeoutMs: LOCK_TIMEOUT_MS });
          expect(result, op).not.toBe("timeout");
          expect(result, op).toMatchObject({ name: "CorruptDataError", outcome: "not-applied" });
          expect((result as ChildResult).message).toContain(keyLock);
          expect((result as ChildResult).message).toContain('risk/"grp"/"k"');
        }
        expect((await lstat(keyLock)).isFIFO()).toBe(true);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "a dangling symbolic link at the key's lock file: write and delete end within lockTimeoutMs, with little CPU (no busy loop), and the link stays",
      async () => {
        let keyLock = "";
        const baseDir = await plantedStore(async (paths) => {
          keyLock = paths.keyLock;
          await symlink("/nonexistent/persist-file-lock", keyLock);
        });
        for (const op of ["write", "delete"] as const) {
          const result = await operationInChild(baseDir, op, { lockTimeoutMs: LOCK_TIMEOUT_MS });
          expect(result, op).not.toBe("timeout");
          expect(result, op).toMatchObject({ name: "CorruptDataError", outcome: "not-applied" });
          const { message, ms, cpuMs } = result as ChildResult;
          expect(message).toContain(keyLock);
          expect(message).toContain("symbolic link");
          expect(ms).toBeLessThan(LOCK_TIMEOUT_MS + 500);
          expect(cpuMs).toBeLessThan(500);
        }
        expect((await lstat(keyLock)).isSymbolicLink()).toBe(true);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "a lock file naming no owner: the write waits lockTimeoutMs with backoff (CPU well below wall time), then CorruptDataError",
      async () => {
        let keyLock = "";
        const baseDir = await plantedStore(async (paths) => {
          keyLock = paths.keyLock;
          await writeFile(keyLock, "garbage");
        });
        const result = await operationInChild(baseDir, "write", { lockTimeoutMs: LOCK_TIMEOUT_MS });
        expect(result).not.toBe("timeout");
        expect(result).toMatchObject({ name: "CorruptDataError", outcome: "not-applied" });
        const { message, ms, cpuMs } = result as ChildResult;
        expect(message).toContain(keyLock);
        expect(message).toContain("never broken");
        expect(ms).toBeGreaterThanOrEqual(LOCK_TIMEOUT_MS - 50);
        expect(ms).toBeLessThan(LOCK_TIMEOUT_MS + 1_000);
        expect(cpuMs).toBeLessThan(ms / 2);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "a symbolic link at the record file is never followed: reads, writes and deletes get CorruptDataError, the link stays",
      async () => {
        const target = path.join(root, "elsewhere.json");
        await writeFile(target, '{"format":1,"revision":1,"value":1}');
        const baseDir = await plantedStore(({ file }) => symlink(target, file));
        const { file } = recordLocation(baseDir, KEY);
        for (const op of OPERATIONS) {
          const result = await operationInChild(baseDir, op);
          expect(result, op).toMatchObject({ name: "CorruptDataError", outcome: "not-applied" });
          expect((result as ChildResult).message).toContain(file);
        }
        expect((await lstat(file)).isSymbolicLink()).toBe(true);
      },
      TEST_TIMEOUT_MS,
    );
  },
);

describe("a record file is read up to maxRecordBytes, never further", () => {
  it("a record file over maxRecordBytes: reads, writes and deletes get CorruptDataError naming it, and it stays", async () => {
    const store = new FileRecordStore({ baseDir: await mkdtemp(path.join(root, "store-")), maxRecordBytes: 1024 });
    try {
      const { file, directory } = recordLocation(store.baseDir, KEY);
      await mkdir(directory, { recursive: true });
      const content = `{"format":1,"revision":1,"value":"${"x".repeat(2048)}"}`;
      await writeFile(file, content);
      for (const call of [
        () => store.read(KEY),
        () => store.write(KEY, "1"),
        () => store.delete(KEY, { condition: { revision: 1 } }),
      ]) {
        const error = (await call().catch((caught: unknown) => caught)) as Error;
        expect(error).toMatchObject({ name: "CorruptDataError", outcome: "not-applied" });
        expect(error.message).toContain(file);
        expect(error.message).toContain("maxRecordBytes");
      }
      expect((await lstat(file)).size).toBe(content.length);
    } finally {
      await store.close();
    }
  });

  it(
    "a sparse 8 GiB file at the record path is refused without growing the read buffer (default 16 MiB cap)",
    async () => {
      const baseDir = await plantedStore(async ({ file }) => {
        await writeFile(file, "");
        await truncate(file, 8 * 1024 ** 3);
      });
      for (const op of OPERATIONS) {
        const result = await operationInChild(baseDir, op);
        expect(result, op).toMatchObject({ name: "CorruptDataError", outcome: "not-applied" });
        expect((result as ChildResult).message).toContain("maxRecordBytes (16777216 bytes)");
        expect((result as ChildResult).maxRssMb).toBeLessThan(400);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it("a value whose record could pass maxRecordBytes is refused before any I/O with InvalidOptionError", async () => {
    const store = new FileRecordStore({ baseDir: await mkdtemp(path.join(root, "store-")), maxRecordBytes: 1024 });
    try {
      await expect(store.write(KEY, JSON.stringify("x".repeat(1024)))).rejects.toMatchObject({
        name: "InvalidOptionError",
        outcome: "not-applied",
      });
      expect(await readdir(store.baseDir)).toEqual([]);
      expect(await store.write(KEY, JSON.stringify("x".repeat(800)))).toEqual({ applied: true, revision: 1 });
      expect((await store.read(KEY)).found).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe("a key whose path the file system cannot hold is an InvalidKeyError, found before any I/O", () => {
  it("8 parts of 255 UTF-8 bytes: read, write and delete get InvalidKeyError (not-applied), nothing is created", async () => {
    const baseDir = path.join(await mkdtemp(path.join(root, "store-")), "data");
    const store = new FileRecordStore({ baseDir });
    try {
      const long: RecordKey = { namespace: "big", parts: Array(8).fill("€".repeat(85)) };
      for (const call of [() => store.read(long), () => store.write(long, "{}"), () => store.delete(long)]) {
        const error = (await call().catch((caught: unknown) => caught)) as Error;
        expect(error).toMatchObject({ name: "InvalidKeyError", outcome: "not-applied" });
        expect(error.message).toContain("the file system cannot hold a name that long");
      }
      await expect(readdir(baseDir)).rejects.toMatchObject({ code: "ENOENT" });
      // 8 parts of 255 ASCII bytes fit.
      const fits: RecordKey = { namespace: "big", parts: Array(8).fill("a".repeat(255)) };
      expect(await store.write(fits, "{}")).toEqual({ applied: true, revision: 1 });
      expect(await store.read(fits)).toEqual({ found: true, json: "{}", revision: 1 });
    } finally {
      await store.close();
    }
  });
});

describe("the ESM build finds its I/O thread through import.meta.url", () => {
  it(
    "a global __filename (node -e, a REPL, a bundler shim) does not send it elsewhere",
    async () => {
      const baseDir = await mkdtemp(path.join(root, "store-"));
      const source = `
      globalThis.__filename = "/somewhere/else/app.js";
      const { FileRecordStore } = await import("@persist-kit/persist-file");
      const store = new FileRecordStore({ baseDir: process.argv[1] });
      try {
        process.stdout.write(JSON.stringify(await store.write({ namespace: "x", parts: ["a"] }, "{}")));
      } catch (error) {
        process.stdout.write(JSON.stringify({ name: error.name, message: error.message }));
      }
      await store.close();`;
      const stdout = await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ["--input-type=module", "-e", source, baseDir], {
          cwd: PACKAGE_DIR,
          stdio: ["ignore", "pipe", "inherit"],
        });
        let text = "";
        child.stdout.on("data", (chunk: Buffer) => {
          text += chunk.toString("utf8");
        });
        child.on("error", reject);
        child.on("exit", () => resolve(text));
      });
      expect(JSON.parse(stdout)).toEqual({ applied: true, revision: 1 });
    },
    TEST_TIMEOUT_MS,
  );
});
