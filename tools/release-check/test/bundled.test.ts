// An application bundled with esbuild, run from a folder without node_modules: the backends are
// given to createPersist as modules, persist-file writes on the calling thread (writeThreads: 0),
// and a file store left with its I/O threads says it is a packaging problem.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getRedisUrl } from "@persist-kit/tools-test-servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installProject, pack, run } from "./packed.js";

const APP = `import { PersistSignalAdapter, createPersist } from "@persist-kit/core";
import * as persistFile from "@persist-kit/persist-file";
import * as persistRedis from "@persist-kit/persist-redis";

const backends = [persistFile, persistRedis];
const row = { id: "s1", position: "long", priceOpen: 0.1 + 0.2, priceTakeProfit: 1, priceStopLoss: 0.01, openTimestamp: 1732000000000, minuteEstimatedTime: 60 };

async function roundTrip(persist) {
  const signals = new PersistSignalAdapter(persist);
  const strategy = "bundled-" + process.pid;
  await signals.setPendingSignal("BTC/USDT", strategy, row);
  const read = await persist.readSignalData("BTC/USDT", strategy);
  await signals.deletePendingSignal("BTC/USDT", strategy);
  const after = await persist.readSignalData("BTC/USDT", strategy);
  await signals.close();
  await persist.close(); // the adapter closes only a store it opened itself
  return [persist.constructor.name, read.priceOpen, after];
}

async function main() {
  const results = [];
  results.push(await roundTrip(new persistFile.PersistFile({ baseDir: "./signals", writeThreads: 0 })));
  results.push(await roundTrip(await createPersist(process.env.REDIS_URL, { backends })));
  const threaded = await createPersist("file:./threaded", { backends });
  const error = await threaded.writeSignalData("BTC/USDT", "threaded", row).catch((caught) => caught);
  await threaded.close();
  results.push([error.name, error.message]);
  console.log(JSON.stringify(results));
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
`;

describe("an esbuild bundle with persist-file and persist-redis", () => {
  let tarballDir: string;
  let project: string;
  let redisUrl: string;

  beforeAll(async () => {
    redisUrl = await getRedisUrl();
    tarballDir = mkdtempSync(join(tmpdir(), "persist-kit-tarballs-"));
    const tarballs = await pack(["core", "persist-file", "persist-redis"], tarballDir);
    project = await installProject([...Object.values(tarballs), "ioredis", "esbuild@^0.25.0"]);
    writeFileSync(join(project, "app.mjs"), APP);
  });

  afterAll(() => {
    rmSync(tarballDir, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  });

  for (const format of ["esm", "cjs"] as const) {
    it(`writes, reads and deletes a signal on both backends (${format} bundle, no node_modules)`, async () => {
      const out = mkdtempSync(join(tmpdir(), "persist-kit-bundled-"));
      try {
        const file = join(out, format === "esm" ? "app.mjs" : "app.cjs");
        // ioredis is CommonJS: an ES module bundle gives it a require.
        const banner =
          format === "esm"
            ? [
                "--banner:js=import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
              ]
            : [];
        await run(
          join(project, "node_modules", ".bin", "esbuild"),
          [
            "app.mjs",
            "--bundle",
            "--platform=node",
            "--target=node20",
            `--format=${format}`,
            `--outfile=${file}`,
            "--log-level=error",
            ...banner,
          ],
          { cwd: project },
        );
        mkdirSync(join(out, "run"));
        const { stdout, stderr } = await run(process.execPath, [file], {
          cwd: join(out, "run"),
          timeout: 60_000,
          env: { ...process.env, REDIS_URL: redisUrl },
        });
        // Only the warning of the file store left with its I/O threads (its start-up sweep could not run).
        expect(
          stderr.split("\n").filter((line) => line !== "" && !/PERSIST_CAPABILITY|--trace-warnings/.test(line)),
        ).toEqual([]);
        const [fileResult, redisResult, threaded] = JSON.parse(stdout);
        expect(fileResult).toEqual(["PersistFile", 0.1 + 0.2, null]);
        expect(redisResult).toEqual(["PersistRedis", 0.1 + 0.2, null]);
        // The I/O threads' module is not in the bundle: a packaging error that says what to do,
        // not a store that is down.
        expect(threaded[0]).not.toBe("BackendUnavailableError");
        expect(threaded[1]).toMatch(/not packaged correctly: its I\/O thread module .* pass writeThreads: 0/);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  }
});
