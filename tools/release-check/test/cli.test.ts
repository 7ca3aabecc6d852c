import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installProject, pack, run } from "./packed.js";

describe("the persist-kit program installed from tarballs", () => {
  let tarballDir: string;
  let project: string;

  beforeAll(async () => {
    tarballDir = mkdtempSync(join(tmpdir(), "persist-kit-cli-tarballs-"));
    const names = ["core", "persist-file", "persist-redis", "persist-postgres", "persist-mongo", "backtest-kit", "cli"];
    project = await installProject(Object.values(await pack(names, tarballDir)));
  }, 300_000);

  afterAll(() => {
    rmSync(tarballDir, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  });

  it("runs from node_modules/.bin: --help, and ls, export and doctor on a file store", async () => {
    const bin = join(project, "node_modules", ".bin", "persist-kit");
    const help = await run(bin, ["--help"], { cwd: project });
    expect(help.stdout).toMatch(/^Usage: persist-kit <command>/);
    const ls = await run(bin, ["ls", "file:./data"], { cwd: project });
    expect(ls.stdout).toMatch(/^STRATEGY\s+SYMBOL/);
    expect(ls.stderr).toBe("0 open signals\n");
    const exported = await run(bin, ["export"], { cwd: project, env: { ...process.env, PERSIST_URL: "file:./data" } });
    expect(exported).toMatchObject({ stdout: `{"end":true,"records":0}\n`, stderr: "exported 0 records\n" });
    const doctor = await run(bin, ["doctor", "file:./data", "--json"], { cwd: project });
    expect(JSON.parse(doctor.stdout)).toMatchObject({ backend: "file", verdict: "ok" });
    await expect(run(bin, ["frobnicate"], { cwd: project })).rejects.toMatchObject({ code: 2 });
  });
});
