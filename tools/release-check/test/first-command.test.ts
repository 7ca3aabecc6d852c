// The root README's first command, on a machine with Node and npm and no pnpm: run as written in
// a fresh clone of the committed tree, with pnpm taken off the PATH.
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const exec = promisify(execFile);
const root = fileURLToPath(new URL("../../../", import.meta.url));
const PNPM_NAMES = new Set(["pnpm", "pnpx", "yarn", "yarnpkg"]);

/** A PATH of one folder that holds every program of /usr/bin and /bin but pnpm (and yarn). */
function pathWithoutPnpm(dir: string): string {
  for (const from of ["/usr/local/bin", "/usr/bin", "/bin"]) {
    let names: string[];
    try {
      names = readdirSync(from);
    } catch {
      continue;
    }
    for (const name of names) {
      if (PNPM_NAMES.has(name)) continue;
      try {
        symlinkSync(join(from, name), join(dir, name));
      } catch {
        // the same name from an earlier folder wins, as on a PATH
      }
    }
  }
  return dir;
}

describe("the root README's first command with only Node and npm", () => {
  let work: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "persist-kit-first-command-"));
  });

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("installs, builds and runs the crash-recovery demo to a PASS verdict", async () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const command = /^```sh\n(.+)\n```/m.exec(readme)?.[1];
    expect(command).toMatch(/^npx /);
    const bin = pathWithoutPnpm(mkdtempSync(join(work, "bin-")));
    const clone = join(work, "clone");
    await exec("git", ["clone", "--quiet", "--no-hardlinks", root, clone]);
    const env = { ...process.env, PATH: bin, CI: "true" };
    delete env.PERSIST_URL;
    await expect(exec("sh", ["-c", "command -v pnpm"], { env })).rejects.toThrow();
    const { stdout } = await exec("sh", ["-c", command as string], { cwd: clone, env, maxBuffer: 64 * 1024 * 1024 });
    expect(stdout).toMatch(/PASS/);
  }, 900_000);
});
