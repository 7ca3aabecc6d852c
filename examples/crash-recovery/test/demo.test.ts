import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
// The built package: the supervisor starts the built bot (dist/bot.js) as a child process.
import {
  type DemoReport,
  formatReport,
  runDemo,
  SECOND_BOT_OWNERSHIP,
  type SecondBotReport,
} from "@persist-kit/example-crash-recovery";
import { getMongoUrl, getPostgresUrl, getRedisUrl } from "@persist-kit/tools-test-servers";
import { afterAll, describe, expect, it } from "vitest";

const directories: string[] = [];
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

function fileBackend(): string {
  const directory = mkdtempSync(join(tmpdir(), "crash-demo-test-"));
  directories.push(directory);
  return `file:${join(directory, "signals")}`;
}

describe("the crash-recovery demo", () => {
  it.each([1, 42, 2026])("passes on the file backend with seed %i", async (seed) => {
    const report = await runDemo({ backend: fileBackend(), seed, kills: 6 });
    expect(report.botFailures).toEqual([]);
    expect(report.lost).toEqual([]);
    expect(report.duplicated).toEqual([]);
    expect(report.corrupted).toEqual([]);
    expect(report.storeMismatches).toEqual([]);
    expect(report.openAtKills, "some signal was open at a kill, so recovery was really exercised").toBeGreaterThan(0);
    expect(report.recoveredIntact).toBe(report.openAtKills);
    expect(report.passed).toBe(true);
    expect(formatReport(report)).toMatch(/verdict: PASS/);
  });

  it("fails when the backend does not persist across processes (memory:)", async () => {
    const report = await runDemo({ backend: "memory:", seed: 42, kills: 6 });
    expect(report.botFailures).toEqual([]);
    expect(report.lost.length).toBeGreaterThan(0);
    expect(report.passed).toBe(false);
    expect(formatReport(report)).toMatch(/verdict: FAIL/);
  });
});

// What --second-bot promises, checked on the report: refused while the first bot lived, naming
// its pid; every key owned within leaseMs + timeoutMs of the SIGKILL; the open signals back intact.
function expectTakeover(report: DemoReport): SecondBotReport {
  const second = report.secondBot as SecondBotReport;
  expect(second, "the second bot was started").toBeDefined();
  expect(second.refusal, "the second bot was refused while the first lived").toBeTypeOf("string");
  expect(second.refusal).toContain(`another owner holds the key: pid ${second.firstPid} `);
  expect(second.refusalHolderPid).toBe(second.firstPid);
  const { leaseMs, timeoutMs } = SECOND_BOT_OWNERSHIP;
  expect(second.takeoverMs, "the second bot took over").toBeDefined();
  // The first bot renewed its lease at least every leaseMs / 3 until the kill, so the store kept
  // it at least two thirds of a lease afterwards: a takeover sooner would mean the lease held nothing.
  expect(second.takeoverMs).toBeGreaterThanOrEqual(leaseMs / 2);
  expect(second.takeoverMs).toBeLessThanOrEqual(leaseMs + timeoutMs);
  expect(second.openAtTakeover, "a signal was open at the kill, so the takeover proves recovery").toBeGreaterThan(0);
  expect(second.recoveredAtTakeover).toHaveLength(second.openAtTakeover);
  expect(second.problems).toEqual([]);
  expect(report.botFailures).toEqual([]);
  expect(report.lost).toEqual([]);
  expect(report.corrupted).toEqual([]);
  expect(report.storeMismatches).toEqual([]);
  expect(report.recoveredIntact).toBe(report.openAtKills);
  expect(report.passed).toBe(true);
  expect(formatReport(report)).toContain(`refused while pid ${second.firstPid} lived: `);
  return second;
}

describe("the crash-recovery demo with a second bot (--second-bot)", () => {
  it("refuses the second bot while the first lives; it takes over after the SIGKILL with the open signals intact", async () => {
    const report = await runDemo({ backend: fileBackend(), seed: 42, kills: 2, secondBot: true });
    const second = expectTakeover(report);
    // The restart after the second kill waits for the killed second bot's lease, and gets it.
    expect(second.restartWaitsMs.map(({ run }) => run)).toEqual([3]);
  });

  it("fails when the backend does not share leases across processes (memory:)", async () => {
    const report = await runDemo({ backend: "memory:", seed: 42, kills: 1, secondBot: true });
    expect(report.botFailures).toEqual([]);
    expect(report.secondBot?.refusal).toBeUndefined();
    expect(report.secondBot?.problems).toContain(
      `the second bot was not refused while the first bot (pid ${report.secondBot?.firstPid}) held the keys`,
    );
    expect(report.passed).toBe(false);
    expect(formatReport(report)).toMatch(/verdict: FAIL/);
  });

  it("refuses to run without a kill to take over after", async () => {
    await expect(runDemo({ backend: "memory:", kills: 0, secondBot: true })).rejects.toThrow(/kills of 1 or more/);
  });
});

describe("the crash-recovery demo on the server backends", () => {
  const servers: Array<[string, () => Promise<string>]> = [
    ["redis", getRedisUrl],
    ["postgres", getPostgresUrl],
    ["mongo", getMongoUrl],
  ];
  it.each(servers)("passes on %s with seed 7", async (_name, getUrl) => {
    const report = await runDemo({ backend: await getUrl(), seed: 7, kills: 5 });
    expect(report.botFailures).toEqual([]);
    expect(report.openAtKills).toBeGreaterThan(0);
    expect(report.recoveredIntact).toBe(report.openAtKills);
    expect(report.storeMismatches).toEqual([]);
    expect(report.passed).toBe(true);
  });

  it.each(servers)("refuses a second bot on %s, which takes over after the SIGKILL", async (_name, getUrl) => {
    expectTakeover(await runDemo({ backend: await getUrl(), seed: 7, kills: 1, secondBot: true }));
  });
});
