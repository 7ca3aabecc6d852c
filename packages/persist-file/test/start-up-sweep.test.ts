import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { makeSignalRow } from "@persist-kit/contract";
import { namespaceDirectory, PersistFile, recordLocation, signalLocation } from "@persist-kit/persist-file";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
// root ignores permission bits, so as root the store runs as the unprivileged user "nobody".
const BOT_UID = process.getuid?.() === 0 ? 65_534 : undefined;

let root = "";

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "persist-file-sweep-"));
  await chmod(root, 0o755);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface BotReport {
  steps: { step: string; ok: boolean; result?: unknown; name?: string; message?: string }[];
  warnings: { backend: string; kind: string; message: string; details?: Record<string, unknown> }[];
}

/**
 * Runs a bot's operations on one key (strategy "momentum") in a new Node process of the bot's
 * user, collecting what `listenWarning` receives; each step reports its result or its error.
 */
function runBot(baseDir: string): Promise<BotReport> {
  const source = `
    import { makeSignalRow } from "@persist-kit/contract";
    import { listenWarning } from "@persist-kit/core";
    import { PersistFile } from "@persist-kit/persist-file";
    const warnings = [];
    listenWarning((warning) => warnings.push(warning));
    const persist = new PersistFile({ baseDir: process.argv[1], lockTimeoutMs: 2_000 });
    const list = async (options) => {
      const keys = [];
      for await (const key of persist.keys(options)) keys.push(key);
      return keys;
    };
    const steps = [];
    for (const [step, call] of [
      ["write", () => persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1))],
      ["read", () => persist.readSignalData("BTC/USDT", "momentum")],
      ["keys of the strategy", () => list({ strategyName: "momentum" })],
      ["delete", () => persist.deleteSignalData("BTC/USDT", "momentum")],
      ["read after delete", () => persist.readSignalData("BTC/USDT", "momentum")],
      ["ping", () => persist.ping()],
      ["write of another namespace", () => persist.records.write({ namespace: "risk", parts: ["momentum"] }, "1")],
      ["keys of every strategy", () => list()],
    ]) {
      try {
        steps.push({ step, ok: true, result: (await call()) ?? null });
      } catch (error) {
        steps.push({ step, ok: false, name: error.name, message: error.message });
      }
    }
    await persist.close();
    process.stdout.write(JSON.stringify({ steps, warnings }));`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", source, baseDir], {
    cwd: PACKAGE_DIR,
    uid: BOT_UID,
    gid: BOT_UID,
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
      if (code === 0) resolve(JSON.parse(stdout) as BotReport);
      else reject(new Error(`the bot exited with ${code}: ${stderr}`));
    });
  });
}

/** A store of the bot's user holding a signal of strategy "legacy" and a record of namespace "audit". */
async function storeWithOtherKeys(): Promise<{ baseDir: string; strategyDirectory: string; auditDirectory: string }> {
  const baseDir = await mkdtemp(path.join(root, "store-"));
  const persist = new PersistFile({ baseDir });
  await persist.writeSignalData("ETH/USDT", "legacy", makeSignalRow(7));
  await persist.records.write({ namespace: "audit", parts: ["legacy", "ETH/USDT"] }, "1");
  await persist.close();
  await mkdir(namespaceDirectory(baseDir, "risk"), { recursive: true });
  if (BOT_UID !== undefined) execFileSync("chown", ["-R", `${BOT_UID}:${BOT_UID}`, baseDir]);
  return {
    baseDir,
    strategyDirectory: signalLocation(baseDir, { strategyName: "legacy", symbol: "ETH/USDT" }).groupDirectory,
    auditDirectory: recordLocation(baseDir, { namespace: "audit", parts: ["legacy", "ETH/USDT"] }).groupDirectory,
  };
}

/** Makes `directory` what root leaves behind with `mkdir -m 000`: nobody else may list or enter it. */
async function lockAway(directory: string): Promise<void> {
  if (BOT_UID !== undefined) await chown(directory, 0, 0);
  await chmod(directory, 0o000);
}

describe.skipIf(process.platform === "win32")(
  "an operation on a key depends on that key's directories only, not on the start-up sweep",
  () => {
    it("directories the bot cannot read (once made by root, mode 000) fail no operation on other keys; each is reported once as a warning", async () => {
      const { baseDir, strategyDirectory, auditDirectory } = await storeWithOtherKeys();
      await lockAway(strategyDirectory);
      await lockAway(auditDirectory);
      try {
        const { steps, warnings } = await runBot(baseDir);
        const outcomes = Object.fromEntries(
          steps.map(({ step, ok, result, message }) => [step, ok ? result : message]),
        );
        expect(outcomes).toMatchObject({
          write: null,
          read: makeSignalRow(1),
          "keys of the strategy": [{ strategyName: "momentum", symbol: "BTC/USDT" }],
          delete: null,
          "read after delete": null,
          ping: null,
          "write of another namespace": { applied: true, revision: 1 },
        });
        // Listing every strategy cannot leave one out (an open position would go unseen): it
        // fails, naming the directory.
        const listAll = steps.find(({ step }) => step === "keys of every strategy");
        expect(listAll).toMatchObject({ ok: false, name: "BackendUnavailableError" });
        expect(listAll?.message).toContain(strategyDirectory);
        expect(warnings).toHaveLength(2);
        for (const [warning, directory] of [
          [warnings[0], strategyDirectory],
          [warnings[1], auditDirectory],
        ] as const) {
          expect(warning).toMatchObject({
            backend: "file",
            kind: "capability",
            details: { directory, code: "EACCES" },
          });
          expect(warning?.message).toContain(directory);
          expect(warning?.message).toContain("permission denied");
        }
      } finally {
        await chmod(strategyDirectory, 0o700);
        await chmod(auditDirectory, 0o700);
      }
    }, 30_000);

    it("an unreadable baseDir (write and search only) is reported, and operations on keys still run", async () => {
      const { baseDir } = await storeWithOtherKeys();
      // A new directory is synced through its parent, which takes reading it: the bot's strategy
      // directory was made while baseDir was still readable.
      await mkdir(path.join(baseDir, "momentum"));
      if (BOT_UID !== undefined) await chown(path.join(baseDir, "momentum"), BOT_UID, BOT_UID);
      await chmod(baseDir, 0o300);
      try {
        const { steps, warnings } = await runBot(baseDir);
        const failed = steps.filter(({ ok, step }) => !ok && step !== "keys of every strategy");
        expect(failed).toEqual([]);
        expect(warnings.map((warning) => warning.details?.directory)).toEqual([baseDir]);
      } finally {
        await chmod(baseDir, 0o700);
      }
    }, 30_000);
  },
);

describe("the start-up sweep does not hold up operations on other keys", () => {
  it("a group lock that is never broken (a live owner) delays the first write of another strategy by far less than lockTimeoutMs, and its group waits for a later start", async () => {
    const baseDir = await mkdtemp(path.join(root, "store-"));
    const before = new PersistFile({ baseDir });
    await before.writeSignalData("ETH/USDT", "legacy", makeSignalRow(7));
    await before.deleteSignalData("ETH/USDT", "legacy");
    await before.close();
    const { groupDirectory, file } = signalLocation(baseDir, { strategyName: "legacy", symbol: "ETH/USDT" });
    const tombstone = await readFile(file, "utf8");
    // A lock of this very process, which is alive: never broken.
    const owner = {
      pid: process.pid,
      start: null,
      boot: null,
      host: hostname(),
      token: randomBytes(16).toString("hex"),
    };
    await writeFile(path.join(groupDirectory, ".group.lock"), JSON.stringify(owner));
    const persist = new PersistFile({ baseDir, lockTimeoutMs: 5_000 });
    try {
      const started = Date.now();
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(await readFile(file, "utf8")).toBe(tombstone);
    } finally {
      await persist.close();
    }
  });
});
