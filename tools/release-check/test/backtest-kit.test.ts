import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installProject, pack, runScript } from "./packed.js";

// A bot's framework constructs the classes itself; this is what it does with the Signal class.
const ROUND_TRIP = `
const persist = new PersistFile({ baseDir: "./bridge" });
const { Signal } = persistKitClasses(persist);
const signal = new Signal("BTC/USDT", "momentum", "binance");
await signal.waitForInit(true);
await signal.writeSignalData({ id: "s1", priceOpen: 64231.12345678901, minuteEstimatedTime: Infinity });
const row = await signal.readSignalData();
await signal.writeSignalData(null);
const after = await signal.readSignalData();
await persist.close();
console.log(JSON.stringify([row.priceOpen, row.minuteEstimatedTime === Infinity, after]));`;

describe("backtest-kit installed from tarballs with core and persist-file", () => {
  let tarballDir: string;
  let tarballs: Record<string, string>;
  let project: string;

  beforeAll(async () => {
    tarballDir = mkdtempSync(join(tmpdir(), "persist-kit-tarballs-"));
    tarballs = await pack(["core", "persist-file", "backtest-kit"], tarballDir);
    project = await installProject(Object.values(tarballs));
  });

  afterAll(() => {
    rmSync(tarballDir, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  });

  it("round-trips a signal from an ES module", async () => {
    const stdout = await runScript(
      project,
      "esm.mjs",
      `import { persistKitClasses } from "@persist-kit/backtest-kit";
import { PersistFile } from "@persist-kit/persist-file";
${ROUND_TRIP}`,
    );
    expect(JSON.parse(stdout)).toEqual([64231.12345678901, true, null]);
  });

  it("round-trips a signal from CommonJS", async () => {
    const stdout = await runScript(
      project,
      "cjs.cjs",
      `const { persistKitClasses } = require("@persist-kit/backtest-kit");
const { PersistFile } = require("@persist-kit/persist-file");
(async () => {
${ROUND_TRIP}
})();`,
    );
    expect(JSON.parse(stdout)).toEqual([64231.12345678901, true, null]);
  });

  it("pulls in no database driver and not the framework", () => {
    const installed = readdirSync(join(project, "node_modules")).filter((name) => !name.startsWith("."));
    for (const name of ["ioredis", "pg", "mongodb", "backtest-kit"]) expect(installed).not.toContain(name);
  });
});

describe("every published package", () => {
  const packagesDir = fileURLToPath(new URL("../../../packages/", import.meta.url));
  let tarballDir: string;

  beforeAll(() => {
    tarballDir = mkdtempSync(join(tmpdir(), "persist-kit-tarballs-"));
  });

  afterAll(() => rmSync(tarballDir, { recursive: true, force: true }));

  it("ships the MIT LICENSE its package.json names", async () => {
    const names = readdirSync(packagesDir);
    const tarballs = await pack(names, tarballDir);
    for (const name of names) {
      const files = execFileSync("tar", ["-tzf", tarballs[name] as string], { encoding: "utf8" }).split("\n");
      expect(files, name).toContain("package/LICENSE");
    }
  });
});
