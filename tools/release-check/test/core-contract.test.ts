import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installProject, pack, runScript } from "./packed.js";

const ROW = `{ id: "s1", position: "long", priceOpen: 0.1 + 0.2, priceTakeProfit: 2, priceStopLoss: 0.05, openTimestamp: 2 ** 53, minuteEstimatedTime: 5 }`;

describe("core and contract from packed tarballs", () => {
  let tarballDir: string;
  let project: string;

  beforeAll(async () => {
    tarballDir = mkdtempSync(join(tmpdir(), "persist-kit-tarballs-"));
    const tarballs = await pack(["core", "contract"], tarballDir);
    project = await installProject(Object.values(tarballs));
  });

  afterAll(() => {
    rmSync(tarballDir, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  });

  it("load with import", async () => {
    const stdout = await runScript(
      project,
      "esm.mjs",
      `import { PersistMemory, PersistSignalAdapter, InvalidSignalError } from "@persist-kit/core";
import { runPersistContract, makeSignalRow } from "@persist-kit/contract";
const signals = new PersistSignalAdapter(new PersistMemory());
await signals.setPendingSignal("BTC/USDT", "s", ${ROW});
const row = await signals.waitForInit("BTC/USDT", "s");
const invalid = await signals.setPendingSignal("BTC/USDT", "s", { ...row, priceOpen: NaN }).catch((e) => e);
console.log(JSON.stringify([row.priceOpen, row.openTimestamp, invalid instanceof InvalidSignalError, typeof runPersistContract, makeSignalRow(1).id]));`,
    );
    expect(JSON.parse(stdout)).toEqual([0.1 + 0.2, 2 ** 53, true, "function", "signal-1"]);
  });

  it("load with require", async () => {
    const stdout = await runScript(
      project,
      "cjs.cjs",
      `const { PersistMemory, PersistSignalAdapter, InvalidKeyError } = require("@persist-kit/core");
const { runPersistContract, makeSignalRow } = require("@persist-kit/contract");
(async () => {
  const signals = new PersistSignalAdapter(new PersistMemory());
  await signals.setPendingSignal("BTC/USDT", "s", ${ROW});
  const row = await signals.waitForInit("BTC/USDT", "s");
  const invalid = await signals.waitForInit("", "s").catch((e) => e);
  console.log(JSON.stringify([row.priceOpen, row.openTimestamp, invalid instanceof InvalidKeyError, typeof runPersistContract, makeSignalRow(1).id]));
})();`,
    );
    expect(JSON.parse(stdout)).toEqual([0.1 + 0.2, 2 ** 53, true, "function", "signal-1"]);
  });
});
