import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const run = promisify(execFile);
const packagesDir = fileURLToPath(new URL("../../../packages/", import.meta.url));

/** Packs the named workspace packages (folder names under packages/) into `dir`; returns the tarball paths. */
export async function pack(names: string[], dir: string): Promise<Record<string, string>> {
  const tarballs: Record<string, string> = {};
  for (const name of names) {
    const before = new Set(readdirSync(dir));
    await run("pnpm", ["pack", "--pack-destination", dir], { cwd: join(packagesDir, name) });
    const created = readdirSync(dir).find((file) => !before.has(file) && file.endsWith(".tgz"));
    if (created === undefined) throw new Error(`pnpm pack made no tarball for ${name}`);
    tarballs[name] = join(dir, created);
  }
  return tarballs;
}

/** A fresh npm project outside the workspace with only `tarballs` installed (and what they pull in). */
export async function installProject(tarballs: string[]): Promise<string> {
  const project = mkdtempSync(join(tmpdir(), "persist-kit-install-"));
  mkdirSync(project, { recursive: true });
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "install-test", private: true, version: "1.0.0" }),
  );
  await run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", ...tarballs], { cwd: project });
  return project;
}

/** Runs `code` as a file named `name` in `project`; returns its stdout. */
export async function runScript(
  project: string,
  name: string,
  code: string,
  env: NodeJS.ProcessEnv = {},
): Promise<string> {
  writeFileSync(join(project, name), code);
  const { stdout } = await run(process.execPath, [name], { cwd: project, env: { ...process.env, ...env } });
  return stdout;
}
