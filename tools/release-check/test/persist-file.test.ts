import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installProject, pack, runScript } from "./packed.js";

const ROW = `{ id: "s1", position: "short", priceOpen: 64231.12345678901, priceTakeProfit: 63000, priceStopLoss: 65000.5, openTimestamp: 1732000000000, minuteEstimatedTime: 60 }`;

const ROUND_TRIP = (persistFile: string) => `
const persist = new PersistFile({ baseDir: "./signals" });
await persist.writeSignalData("BTC/USDT", "momentum", ${ROW});
const row = await persist.readSignalData("BTC/USDT", "momentum");
await persist.deleteSignalData("BTC/USDT", "momentum");
const after = await persist.readSignalData("BTC/USDT", "momentum");
const viaUrl = await createPersist("file:./signals", { importModule: (name) => ${persistFile} });
await persist.close();
await viaUrl.close();
console.log(JSON.stringify([row.priceOpen, after, viaUrl.constructor.name]));`;

describe("core and persist-file installed from tarballs, nothing else", () => {
  let tarballDir: string;
  let project: string;

  beforeAll(async () => {
    tarballDir = mkdtempSync(join(tmpdir(), "persist-kit-tarballs-"));
    const tarballs = await pack(["core", "persist-file"], tarballDir);
    project = await installProject(Object.values(tarballs));
  });

  afterAll(() => {
    rmSync(tarballDir, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  });

  it("writes, reads and deletes a signal from an ES module", async () => {
    const stdout = await runScript(
      project,
      "esm.mjs",
      `import { createPersist } from "@persist-kit/core";
import { PersistFile } from "@persist-kit/persist-file";
${ROUND_TRIP("import(name)")}`,
    );
    expect(JSON.parse(stdout)).toEqual([64231.12345678901, null, "PersistFile"]);
  });

  it("writes, reads and deletes a signal from CommonJS", async () => {
    const stdout = await runScript(
      project,
      "cjs.cjs",
      `const { createPersist } = require("@persist-kit/core");
const { PersistFile } = require("@persist-kit/persist-file");
(async () => {
${ROUND_TRIP("Promise.resolve(require(name))")}
})();`,
    );
    expect(JSON.parse(stdout)).toEqual([64231.12345678901, null, "PersistFile"]);
  });

  it("createPersist in CommonJS loads the CommonJS backend over the same core", async () => {
    const stdout = await runScript(
      project,
      "cjs-default.cjs",
      `const core = require("@persist-kit/core");
const { PersistFile } = require("@persist-kit/persist-file");
(async () => {
  const persist = await core.createPersist("file:./signals-cjs");
  const error = await persist.readSignalData("", "s").catch((e) => e);
  console.log(JSON.stringify([persist instanceof PersistFile, error instanceof core.InvalidKeyError, error.code]));
  await persist.close();
})();`,
    );
    expect(JSON.parse(stdout)).toEqual([true, true, "PERSIST_INVALID_KEY"]);
  });

  it("createPersist in an ES module loads the ES module backend", async () => {
    const stdout = await runScript(
      project,
      "esm-default.mjs",
      `import { createPersist } from "@persist-kit/core";
import { PersistFile } from "@persist-kit/persist-file";
const persist = await createPersist("file:./signals-esm");
console.log(JSON.stringify(persist instanceof PersistFile));
await persist.close();`,
    );
    expect(JSON.parse(stdout)).toBe(true);
  });

  it("pulls in no database driver", () => {
    const installed = readdirSync(join(project, "node_modules")).filter((name) => !name.startsWith("."));
    for (const driver of ["ioredis", "redis", "pg", "mongodb", "@redis"]) {
      expect(installed, `${driver} was installed`).not.toContain(driver);
    }
    expect(readdirSync(join(project, "node_modules", "@persist-kit")).sort()).toEqual(["core", "persist-file"]);
    expect(existsSync(join(project, "node_modules", "fast-check")), "no test-only dependency either").toBe(false);
  });
});
