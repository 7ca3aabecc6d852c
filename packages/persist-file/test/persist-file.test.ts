import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { makeSignalRow } from "@persist-kit/contract";
import { createPersist, type SignalKey } from "@persist-kit/core";
import { fromUrl, PersistFile, signalFilePath } from "@persist-kit/persist-file";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
let root = "";

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "persist-file-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function withStore(body: (persist: PersistFile) => Promise<void>, ttlMs?: number): Promise<void> {
  const persist = new PersistFile({ baseDir: await mkdtemp(path.join(root, "store-")), ttlMs });
  try {
    await body(persist);
  } finally {
    await persist.close();
  }
}

/** Runs `source` as an ES module in a new Node process inside this package; resolves with its exit code. */
function runNode(source: string, args: string[] = [], timeoutMs = 15_000): Promise<number | string> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", source, ...args], {
    cwd: PACKAGE_DIR,
    stdio: ["ignore", "ignore", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve("timeout");
    }, timeoutMs);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal ?? "unknown");
    });
  });
}

describe("operations on one key run in call order", () => {
  it("unawaited writes and deletes on one key end with the last call", () =>
    withStore(async (persist) => {
      const calls: Promise<void>[] = [];
      for (let sequence = 1; sequence <= 30; sequence++) {
        calls.push(persist.writeSignalData("BTC/USDT", "order", makeSignalRow(sequence)));
        if (sequence % 7 === 0) calls.push(persist.deleteSignalData("BTC/USDT", "order"));
      }
      const read = persist.readSignalData("BTC/USDT", "order");
      calls.push(persist.deleteSignalData("BTC/USDT", "order"));
      calls.push(persist.writeSignalData("BTC/USDT", "order", makeSignalRow(99)));
      await Promise.all(calls);
      expect(await read).toEqual(makeSignalRow(30));
      expect(await persist.readSignalData("BTC/USDT", "order")).toEqual(makeSignalRow(99));
    }));

  it("writes to many keys at once all land", () =>
    withStore(async (persist) => {
      const symbols = Array.from({ length: 40 }, (_, index) => `SYM${index}/USDT`);
      await Promise.all(symbols.map((symbol, index) => persist.writeSignalData(symbol, "many", makeSignalRow(index))));
      for (const [index, symbol] of symbols.entries()) {
        expect(await persist.readSignalData(symbol, "many")).toEqual(makeSignalRow(index));
      }
    }));
});

describe("files and directories", () => {
  it("a signal file holds a format 1 record: the revision and the row as readable JSON, owner-only by default", () =>
    withStore(async (persist) => {
      await persist.writeSignalData("BTC/USDT", "layout", makeSignalRow(1));
      const file = signalFilePath(persist.baseDir, { strategyName: "layout", symbol: "BTC/USDT" });
      expect(path.relative(persist.baseDir, file)).toBe(path.join("layout", "^b^t^c%2F^u^s^d^t.json"));
      expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ format: 1, revision: 1, value: makeSignalRow(1) });
      await persist.writeSignalData("BTC/USDT", "layout", makeSignalRow(2));
      expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ format: 1, revision: 2, value: makeSignalRow(2) });
      if (process.platform !== "win32") {
        expect((await stat(file)).mode & 0o777).toBe(0o600);
        expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
      }
    }));

  it("with ttlMs the record holds expiresAt, and an expired key is not listed", () =>
    withStore(async (persist) => {
      const before = Date.now();
      await persist.writeSignalData("BTC/USDT", "ttl", makeSignalRow(1));
      const stored = JSON.parse(
        await readFile(signalFilePath(persist.baseDir, { strategyName: "ttl", symbol: "BTC/USDT" }), "utf8"),
      );
      expect(stored.value).toEqual(makeSignalRow(1));
      expect(stored.expiresAt).toBeGreaterThanOrEqual(before + 1_000);
      const listed: SignalKey[] = [];
      for await (const key of persist.keys()) listed.push(key);
      expect(listed).toEqual([{ strategyName: "ttl", symbol: "BTC/USDT" }]);
      // Past the expiry, with margin for a slow machine.
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      expect(await persist.readSignalData("BTC/USDT", "ttl")).toBeNull();
      for await (const key of persist.keys()) expect.unreachable(`listed ${JSON.stringify(key)}`);
    }, 1_000));

  it("ping() creates baseDir and proves it takes files", async () => {
    const persist = new PersistFile({ baseDir: path.join(root, "pinged", "nested") });
    await persist.ping();
    expect((await stat(persist.baseDir)).isDirectory()).toBe(true);
    await persist.close();
  });

  it("bad options are refused when the backend is made", () => {
    expect(() => new PersistFile({ ttlMs: 0 })).toThrow(/ttlMs/);
    expect(() => new PersistFile({ fileMode: -1 })).toThrow(/fileMode/);
    expect(() => new PersistFile({ writeThreads: -1 })).toThrow(/writeThreads/);
    expect(() => new PersistFile({ writeThreads: 65 })).toThrow(/writeThreads/);
    expect(() => new PersistFile({ lockTimeoutMs: 0.5 })).toThrow(
      expect.objectContaining({ code: "PERSIST_INVALID_OPTION" }),
    );
  });
});

describe("close()", () => {
  it("waits for operations already started", async () => {
    const baseDir = await mkdtemp(path.join(root, "store-"));
    const persist = new PersistFile({ baseDir });
    const write = persist.writeSignalData("BTC/USDT", "closing", makeSignalRow(5));
    await persist.close();
    await write;
    const reopened = new PersistFile({ baseDir });
    expect(await reopened.readSignalData("BTC/USDT", "closing")).toEqual(makeSignalRow(5));
    await reopened.close();
  });

  it("operations after close() reject with BackendClosedError, nothing sent", async () => {
    const persist = new PersistFile({ baseDir: await mkdtemp(path.join(root, "store-")) });
    await persist.close();
    const closed = expect.objectContaining({ code: "PERSIST_BACKEND_CLOSED", backend: "file", outcome: "not-applied" });
    await expect(persist.writeSignalData("BTC/USDT", "closed", makeSignalRow(1))).rejects.toThrow(closed);
    await expect(persist.readSignalData("BTC/USDT", "closed")).rejects.toThrow(closed);
    await expect(persist.deleteSignalData("BTC/USDT", "closed")).rejects.toThrow(closed);
    await expect(persist.ping()).rejects.toThrow(closed);
    await expect(persist.keys()[Symbol.asyncIterator]().next()).rejects.toThrow(closed);
  });

  it("a process that never calls close() still exits once its writes are done", async () => {
    const baseDir = await mkdtemp(path.join(root, "store-"));
    const source = `
      import { PersistFile } from "@persist-kit/persist-file";
      import { makeSignalRow } from "@persist-kit/contract";
      const persist = new PersistFile({ baseDir: process.argv[1] });
      await persist.writeSignalData("BTC/USDT", "unclosed", makeSignalRow(1));
      await persist.readSignalData("BTC/USDT", "unclosed");`;
    expect(await runNode(source, [baseDir])).toBe(0);
    const persist = new PersistFile({ baseDir });
    expect(await persist.readSignalData("BTC/USDT", "unclosed")).toEqual(makeSignalRow(1));
    await persist.close();
  });

  it("the CommonJS build finds its I/O thread too", async () => {
    const baseDir = await mkdtemp(path.join(root, "store-"));
    const source = `
      import { createRequire } from "node:module";
      const require = createRequire(${JSON.stringify(pathToFileURL(path.join(PACKAGE_DIR, "package.json")).href)});
      const { PersistFile } = require("@persist-kit/persist-file");
      const { makeSignalRow } = await import("@persist-kit/contract");
      const persist = new PersistFile({ baseDir: process.argv[1] });
      await persist.writeSignalData("BTC/USDT", "cjs", makeSignalRow(1));
      await persist.close();`;
    expect(await runNode(source, [baseDir])).toBe(0);
    const persist = new PersistFile({ baseDir });
    expect(await persist.readSignalData("BTC/USDT", "cjs")).toEqual(makeSignalRow(1));
    await persist.close();
  });
});

describe("createPersist('file:...') builds a PersistFile", () => {
  const importModule = (name: string) => import(name);

  it("from file:///absolute/dir, and it stores signals", async () => {
    const baseDir = await mkdtemp(path.join(root, "store-"));
    const persist = await createPersist(pathToFileURL(baseDir).href, { importModule, ttlMs: 60_000 });
    try {
      expect(persist).toBeInstanceOf(PersistFile);
      expect((persist as PersistFile).baseDir).toBe(baseDir);
      await persist.writeSignalData("BTC/USDT", "url", makeSignalRow(1));
      expect(await persist.readSignalData("BTC/USDT", "url")).toEqual(makeSignalRow(1));
    } finally {
      await persist.close?.();
    }
  });

  it("relative forms resolve against the working directory", async () => {
    for (const [url, expected] of [
      ["file:./data", "data"],
      ["file:relative/dir", path.join("relative", "dir")],
      ["file:", "data"],
    ] as const) {
      const persist = (await createPersist(url, { importModule })) as PersistFile;
      expect(persist.baseDir, url).toBe(path.resolve(expected));
      await persist.close?.();
    }
    expect(fromUrl("file:/abs/dir").baseDir).toBe(path.resolve("/abs/dir"));
  });

  it("a file URL naming another host is refused", () => {
    expect(() => fromUrl("file://example.com/data")).toThrow(
      expect.objectContaining({ code: "PERSIST_INVALID_OPTION" }),
    );
    expect(() => fromUrl("redis://localhost")).toThrow(expect.objectContaining({ code: "PERSIST_INVALID_OPTION" }));
  });
});
