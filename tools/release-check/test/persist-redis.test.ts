import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getRedisUrl } from "@persist-kit/tools-test-servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installProject, pack, runScript } from "./packed.js";

const ROW = `{ id: "s1", position: "long", priceOpen: 0.1 + 0.2, priceTakeProfit: 1, priceStopLoss: 0.01, openTimestamp: 1732000000000, minuteEstimatedTime: 60 }`;

const ROUND_TRIP = `
const persist = await createPersist(process.env.REDIS_URL, { importModule });
const strategy = "release-check-" + process.pid;
await persist.writeSignalData("BTC/USDT", strategy, ${ROW});
const row = await persist.readSignalData("BTC/USDT", strategy);
await persist.deleteSignalData("BTC/USDT", strategy);
const after = await persist.readSignalData("BTC/USDT", strategy);
await persist.close();
console.log(JSON.stringify([row.priceOpen, after, persist.constructor.name]));`;

describe("core, persist-redis and ioredis installed from tarballs, against the test Redis", () => {
  let tarballDir: string;
  let project: string;
  let redisUrl: string;

  beforeAll(async () => {
    redisUrl = await getRedisUrl();
    tarballDir = mkdtempSync(join(tmpdir(), "persist-kit-tarballs-"));
    const tarballs = await pack(["core", "persist-redis"], tarballDir);
    project = await installProject([...Object.values(tarballs), "ioredis@^5.9.2"]);
  });

  afterAll(() => {
    rmSync(tarballDir, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  });

  it("writes, reads and deletes a signal from an ES module, then exits", async () => {
    const stdout = await runScript(
      project,
      "esm.mjs",
      `import { createPersist } from "@persist-kit/core";\nconst importModule = (name) => import(name);\n${ROUND_TRIP}`,
      { REDIS_URL: redisUrl },
    );
    expect(JSON.parse(stdout)).toEqual([0.1 + 0.2, null, "PersistRedis"]);
  });

  it("writes, reads and deletes a signal from CommonJS, then exits", async () => {
    const stdout = await runScript(
      project,
      "cjs.cjs",
      `const { createPersist } = require("@persist-kit/core");\nconst importModule = async (name) => require(name);\n(async () => {${ROUND_TRIP}\n})();`,
      { REDIS_URL: redisUrl },
    );
    expect(JSON.parse(stdout)).toEqual([0.1 + 0.2, null, "PersistRedis"]);
  });

  it("pulls in no other database driver", () => {
    const installed = readdirSync(join(project, "node_modules"));
    for (const driver of ["pg", "mongodb", "redis"]) expect(installed).not.toContain(driver);
    expect(readdirSync(join(project, "node_modules", "@persist-kit")).sort()).toEqual(["core", "persist-redis"]);
  });
});
