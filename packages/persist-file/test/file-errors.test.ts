import { execFileSync, spawn } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { makeSignalRow } from "@persist-kit/contract";
import { serializeSignalRow } from "@persist-kit/core";
import { PersistFile, signalFilePath } from "@persist-kit/persist-file";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
const STRATEGY = "errors";
const SYMBOL = "BTC/USDT";
const BIG_PADDING = 256 * 1024;
const BIG_ROW = makeSignalRow(2, { padding: "x".repeat(BIG_PADDING) });

let root = "";

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "persist-file-errors-"));
  // Other users' processes (see writeInChild) must be able to reach the stores below.
  await chmod(root, 0o755);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A store holding row 1 under the key, with its strategy directory created. */
async function storeWithRow(baseDir?: string): Promise<{ baseDir: string; directory: string; file: string }> {
  const dir = baseDir ?? (await mkdtemp(path.join(root, "store-")));
  const persist = new PersistFile({ baseDir: dir });
  await persist.writeSignalData(SYMBOL, STRATEGY, makeSignalRow(1));
  await persist.close();
  const file = signalFilePath(dir, { strategyName: STRATEGY, symbol: SYMBOL });
  return { baseDir: dir, directory: path.dirname(file), file };
}

interface ChildOutcome {
  name?: string;
  message?: string;
  outcome?: string;
  ok?: boolean;
}

/**
 * Writes row 2, with `paddingBytes` of padding, to the key in a new Node process and reports how
 * that went. `shellPrefix` runs first in the child's shell (to lower a limit); `uid` runs the
 * child as another user.
 */
function writeInChild(
  baseDir: string,
  paddingBytes: number,
  options: { uid?: number; shellPrefix?: string } = {},
): Promise<ChildOutcome> {
  const source = `
    import { makeSignalRow } from "@persist-kit/contract";
    import { PersistFile } from "@persist-kit/persist-file";
    const [baseDir, symbol, strategy, paddingBytes] = process.argv.slice(1);
    const persist = new PersistFile({ baseDir });
    let outcome;
    try {
      await persist.writeSignalData(symbol, strategy, makeSignalRow(2, { padding: "x".repeat(Number(paddingBytes)) }));
      outcome = { ok: true };
    } catch (error) {
      outcome = { name: error.name, message: error.message, outcome: error.outcome };
    }
    await persist.close();
    process.stdout.write(JSON.stringify(outcome));`;
  const args = ["--input-type=module", "-e", source, baseDir, SYMBOL, STRATEGY, String(paddingBytes)];
  const [command, commandArgs] =
    options.shellPrefix === undefined
      ? [process.execPath, args]
      : ["sh", ["-c", `${options.shellPrefix}; exec "$0" "$@"`, process.execPath, ...args]];
  const child = spawn(command, commandArgs, {
    cwd: PACKAGE_DIR,
    uid: options.uid,
    gid: options.uid,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(JSON.parse(stdout) as ChildOutcome);
      else reject(new Error(`child exited with ${code}: ${stderr}`));
    });
  });
}

function tryMountTmpfs(directory: string, sizeBytes: number): string | undefined {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes},mode=0755`, "tmpfs", directory], { stdio: "pipe" });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

function unmount(directory: string): void {
  execFileSync("umount", [directory], { stdio: "pipe" });
}

async function expectOnlyTarget(directory: string, file: string): Promise<void> {
  expect(await readdir(directory)).toEqual([path.basename(file)]);
  expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ format: 1, revision: 1, value: makeSignalRow(1) });
}

describe("file system errors name the backend, the operation, the key and the file", () => {
  it("a file standing where the strategy directory belongs (ENOTDIR)", async () => {
    const baseDir = await mkdtemp(path.join(root, "store-"));
    const directory = path.dirname(signalFilePath(baseDir, { strategyName: STRATEGY, symbol: SYMBOL }));
    await writeFile(directory, "not a directory");
    const persist = new PersistFile({ baseDir });
    try {
      for (const [operation, call] of [
        ["write", () => persist.writeSignalData(SYMBOL, STRATEGY, makeSignalRow(1))],
        ["read", () => persist.readSignalData(SYMBOL, STRATEGY)],
        ["delete", () => persist.deleteSignalData(SYMBOL, STRATEGY)],
      ] as const) {
        const error = (await call().catch((caught: unknown) => caught)) as Error;
        expect(error).toMatchObject({ name: "BackendUnavailableError", backend: "file", operation, symbol: SYMBOL });
        expect(error.message).toContain("a file stands where a directory is expected");
        expect(error.message).toContain(`"${STRATEGY}"/"${SYMBOL}"`);
        expect(error.message).toContain(directory);
      }
      expect(await readFile(directory, "utf8")).toBe("not a directory");
    } finally {
      await persist.close();
    }
  });

  it("a read-only strategy directory (EACCES): permission denied, nothing half-written", async () => {
    const { baseDir, directory, file } = await storeWithRow();
    await chmod(baseDir, 0o755);
    await chmod(directory, 0o555);
    // root ignores permission bits, so as root the write runs as the unprivileged user "nobody".
    const uid = process.getuid?.() === 0 ? 65_534 : undefined;
    try {
      const outcome = await writeInChild(baseDir, 0, { uid });
      expect(outcome.name).toBe("BackendUnavailableError");
      expect(outcome.message).toContain("permission denied");
      expect(outcome.outcome).toBe("not-applied");
      await expectOnlyTarget(directory, file);
    } finally {
      await chmod(directory, 0o700);
    }
  });

  it("a write that fails half-way (EFBIG, file size limit) removes its temp file", async () => {
    const { baseDir, directory, file } = await storeWithRow();
    // 16 blocks (8 KiB or 16 KiB, depending on the shell) lets the temp file grow, then fail.
    const outcome = await writeInChild(baseDir, BIG_PADDING, { shellPrefix: "ulimit -f 16" });
    expect(outcome.name).toBe("BackendUnavailableError");
    expect(outcome.message).toContain("file too large");
    expect(outcome.outcome).toBe("not-applied");
    await expectOnlyTarget(directory, file);
  });

  describe("on a tiny tmpfs (needs permission to mount)", () => {
    let mountPoint = "";
    let mountProblem: string | undefined;

    beforeAll(async () => {
      mountPoint = await mkdtemp(path.join(root, "tmpfs-"));
      mountProblem = tryMountTmpfs(mountPoint, 64 * 1024);
      if (mountProblem === undefined) return;
      // CI runs as root, where mounting works: there a failed mount is a failure, not a skip.
      if (process.env.CI === "true") throw new Error(`tmpfs tests need mount: ${mountProblem}`);
      console.warn(`tmpfs tests skipped: mount failed: ${mountProblem}`);
    });

    afterAll(() => {
      if (mountProblem === undefined) unmount(mountPoint);
    });

    it("a full disk (ENOSPC): disk full, nothing half-written, the old row still reads", async (context) => {
      if (mountProblem !== undefined) context.skip();
      const { baseDir, directory, file } = await storeWithRow(path.join(mountPoint, "full"));
      const persist = new PersistFile({ baseDir });
      try {
        const error = (await persist.writeSignalData(SYMBOL, STRATEGY, BIG_ROW).catch((caught) => caught)) as Error;
        expect(error).toMatchObject({ name: "BackendUnavailableError", operation: "write" });
        expect(error.message).toContain("disk full");
        expect(error).toMatchObject({ outcome: "not-applied" });
        await expectOnlyTarget(directory, file);
        expect(await persist.readSignalData(SYMBOL, STRATEGY)).toEqual(makeSignalRow(1));
      } finally {
        await persist.close();
      }
    });

    it("a read-only file system (EROFS): writes and deletes fail clearly, reads still work", async (context) => {
      if (mountProblem !== undefined) context.skip();
      const { baseDir, directory, file } = await storeWithRow(path.join(mountPoint, "readonly"));
      execFileSync("mount", ["-o", "remount,ro", mountPoint], { stdio: "pipe" });
      const persist = new PersistFile({ baseDir });
      try {
        const write = (await persist.writeSignalData(SYMBOL, STRATEGY, makeSignalRow(2)).catch((e) => e)) as Error;
        expect(write.message).toContain("read-only file system");
        const remove = (await persist.deleteSignalData(SYMBOL, STRATEGY).catch((e) => e)) as Error;
        expect(remove).toMatchObject({ name: "BackendUnavailableError", operation: "delete" });
        expect(remove.message).toContain("read-only file system");
        expect(await persist.readSignalData(SYMBOL, STRATEGY)).toEqual(makeSignalRow(1));
        await expect(persist.ping()).rejects.toThrow(/read-only file system/);
        await expectOnlyTarget(directory, file);
      } finally {
        await persist.close();
        execFileSync("mount", ["-o", "remount,rw", mountPoint], { stdio: "pipe" });
      }
    });
  });

  it("corrupt stored bytes that are not UTF-8 are reported, not altered", async () => {
    const { baseDir, file } = await storeWithRow();
    // "café" with the é in Latin-1: one byte that is not UTF-8.
    const row = serializeSignalRow(makeSignalRow(1, { note: "caf#" }));
    const bytes = Buffer.from(`{"format":1,"revision":1,"value":${row}}`, "utf8");
    bytes[bytes.indexOf("#")] = 0xe9;
    await writeFile(file, bytes);
    const persist = new PersistFile({ baseDir });
    try {
      const error = (await persist.readSignalData(SYMBOL, STRATEGY).catch((caught) => caught)) as Error;
      expect(error).toMatchObject({ name: "CorruptDataError" });
      expect(error.message).toContain(file);
      expect(error.message).toContain("not UTF-8");
      const write = (await persist
        .writeSignalData(SYMBOL, STRATEGY, makeSignalRow(2))
        .catch((caught) => caught)) as Error;
      expect(write).toMatchObject({ name: "CorruptDataError", outcome: "not-applied" });
      expect(await readFile(file)).toEqual(bytes);
    } finally {
      await persist.close();
    }
  });
});
