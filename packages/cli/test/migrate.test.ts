// migrate across every backend and back, bit-exact; a migrate killed half way and run again.
// PERSIST_KIT_CLI_MIGRATE_SIGNALS sets how many signals go file -> redis -> postgres -> file
// (default 10,000; 2,000 when CI is set), PERSIST_KIT_CLI_MIGRATE_MONGO_SIGNALS how many go the
// whole way through FerretDB as well (default 300). FerretDB is the exception because every
// operation of persist-mongo on a key this process has not seen yet reads the whole collection
// there (an `_id` range that FerretDB's SQLite backend does not hand to SQL): about 4 ms a read
// in an empty collection and 42 ms with 500 documents here, so a copy into it grows with the
// square of the count, and 10,000 would take hours.

import { spawn } from "node:child_process";
import { makeSignalRow } from "@persist-kit/contract";
import { type ClosablePersist, createPersist } from "@persist-kit/core";
import * as persistFile from "@persist-kit/persist-file";
import { describe, expect, it } from "vitest";
import { BACKENDS, BIN, cli, spawnCli } from "./cli-helpers.js";

const SIGNALS = signalCount("PERSIST_KIT_CLI_MIGRATE_SIGNALS", process.env.CI ? 2_000 : 10_000);
const MONGO_SIGNALS = signalCount("PERSIST_KIT_CLI_MIGRATE_MONGO_SIGNALS", 300);

function signalCount(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const count = Number(text);
  if (!Number.isInteger(count) || count < 100) {
    throw new Error(`${name} must be a whole number of at least 100, got ${JSON.stringify(text)}`);
  }
  return count;
}

// 100 strategies, prices that do not round-trip through a decimal print with fewer digits, and
// some signals rewritten so revisions differ from key to key.
async function seedFileStore(count: number): Promise<string> {
  const url = await BACKENDS.file?.("migrate-source");
  if (url === undefined) throw new Error("no file backend");
  const persist: ClosablePersist = await createPersist(url, { backends: [persistFile] });
  try {
    const writes = Array.from({ length: count }, (_, index) => index);
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < writes.length) {
          const index = next++;
          const symbol = `S${index}/USDT`;
          const strategy = `strategy-${index % 100}`;
          const row = makeSignalRow(index, { symbol, priceOpen: (index + 1) * 0.1 + 1e-13, cost: index / 3 });
          await persist.writeSignalData(symbol, strategy, row);
          if (index % 7 === 0) await persist.writeSignalData(symbol, strategy, { ...row, note: "moved" });
        }
      }),
    );
  } finally {
    await persist.close();
  }
  return url;
}

/** Every record of a store, as export lines in a stable order. */
async function exported(url: string): Promise<string[]> {
  const ran = await cli(["export", url]);
  expect(ran.status, ran.stderr).toBe(0);
  const lines = ran.stdout.trimEnd().split("\n");
  // The last line counts the records before it: an export that was not cut short.
  expect(JSON.parse(lines.pop() as string)).toEqual({ end: true, records: lines.length });
  return lines.sort();
}

describe("migrate", () => {
  const chains: [number, string[]][] = [
    [SIGNALS, ["redis", "postgres", "file"]],
    [MONGO_SIGNALS, ["redis", "postgres", "mongo", "file"]],
  ];
  for (const [count, hops] of chains) {
    it(
      `carries ${count} signals file -> ${hops.join(" -> ")} bit-exact, revisions kept`,
      async () => {
        const source = await seedFileStore(count);
        const original = await exported(source);
        expect(original).toHaveLength(count);
        const chain = [source];
        for (const backend of hops)
          chain.push(await (BACKENDS[backend] as (label: string) => Promise<string>)("chain"));
        for (let hop = 1; hop < chain.length; hop++) {
          const started = performance.now();
          const ran = await cli([
            "migrate",
            chain[hop - 1] as string,
            chain[hop] as string,
            "--json",
            "--concurrency",
            "32",
          ]);
          console.log(
            `${count} signals, hop ${hop} to ${hops[hop - 1]}: ${((performance.now() - started) / 1000).toFixed(1)} s`,
          );
          expect(ran.status, ran.stderr).toBe(0);
          expect(JSON.parse(ran.stdout)).toMatchObject({
            records: count,
            written: count,
            mismatched: 0,
            "newer-in-target": 0,
            onlyInTarget: 0,
          });
          // Plain progress lines (standard error is no terminal here), the last with the whole count.
          const total = count.toLocaleString("en-US");
          expect(ran.stderr.trimEnd().split("\n").at(-1)).toMatch(new RegExp(`^${total}/${total} copied, [\\d,]+/s$`));
        }
        expect(await exported(chain.at(-1) as string)).toEqual(original);
        // Run again: nothing to do.
        const again = await cli(["migrate", chain[0] as string, chain.at(-1) as string, "--json"]);
        expect(JSON.parse(again.stdout)).toMatchObject({ written: 0, unchanged: count });
      },
      120_000 + count * 100,
    );
  }

  it("a migrate killed with SIGKILL half way and run again completes with nothing lost or doubled", async () => {
    const count = Math.min(SIGNALS, 5_000);
    const source = await seedFileStore(count);
    const target = await (BACKENDS.postgres as (label: string) => Promise<string>)("killed");
    const env = { FROM_URL: source, TO_URL: target };
    const run = spawnCli(["migrate", "env:FROM_URL", "env:TO_URL", "--concurrency", "8"], env);
    // The first progress line says 1,000 were copied: kill it there.
    const deadline = Date.now() + 120_000;
    while (!/^1,000\//m.test(run.output().stderr)) {
      if (Date.now() > deadline || run.child.exitCode !== null)
        throw new Error(`no progress: ${JSON.stringify(run.output())}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    run.child.kill("SIGKILL");
    const killed = await run.exited;
    expect(killed.stdout).toBe("");
    const partial = (await exported(target)).length;
    expect(partial).toBeGreaterThanOrEqual(1_000);
    expect(partial).toBeLessThan(count);

    const rerun = spawnCli(["migrate", "env:FROM_URL", "env:TO_URL", "--json"], env);
    const finished = await rerun.exited;
    expect(finished.status, finished.stderr).toBe(0);
    const summary = JSON.parse(finished.stdout);
    expect(summary).toMatchObject({ records: count, mismatched: 0, "newer-in-target": 0 });
    // What the killed run wrote is found as it is; everything else is written now, once.
    expect(summary.unchanged).toBe(partial);
    expect(summary.written + summary.unchanged).toBe(count);
    expect(await exported(target)).toEqual(await exported(source));
  });

  it("on a terminal the progress is one bar redrawn in place", async () => {
    const source = await seedFileStore(300);
    const target = await (BACKENDS.redis as (label: string) => Promise<string>)("terminal");
    // script(1) gives the program a terminal; the URLs go through the environment.
    const ran = spawn(
      "script",
      [
        "-qec",
        `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} migrate env:FROM_URL env:TO_URL`,
        "/dev/null",
      ],
      {
        env: { PATH: process.env.PATH, FROM_URL: source, TO_URL: target },
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    let output = "";
    ran.stdout.on("data", (chunk) => {
      output += chunk;
    });
    const status = await new Promise((resolve) => ran.once("close", resolve));
    expect(status, output).toBe(0);
    expect(output).toMatch(/\r\[#{30}\] 300\/300 copied, [\d,]+\/s\r?\n/);
    expect(output).not.toMatch(/^300\/300 copied/m);
    expect(output).toMatch(/300 records: copied 300, unchanged 0/);
  });
});
