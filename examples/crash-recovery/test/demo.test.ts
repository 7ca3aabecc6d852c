import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
// The built package: the supervisor starts the built bot (dist/bot.js) as a child process.
import { formatReport, runDemo } from "@persist-kit/example-crash-recovery";
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
});
