#!/usr/bin/env node
// Checks every published package the way a registry user would meet it: publint (package.json,
// exports, files), @arethetypeswrong/cli (types for import and require) and a dry-run publish.
// Run after `pnpm build`.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const packagesDir = join(root, "packages");

function sh(command, args, cwd) {
  process.stdout.write(`\n$ ${[command, ...args].join(" ")}   (in ${cwd.slice(root.length) || "."})\n`);
  execFileSync(command, args, { cwd, stdio: "inherit" });
}

const published = readdirSync(packagesDir)
  .map((name) => join(packagesDir, name))
  .filter((dir) => {
    try {
      return JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).private !== true;
    } catch {
      return false;
    }
  });

for (const dir of published) {
  sh("pnpm", ["exec", "publint", "--strict"], dir);
  sh("pnpm", ["exec", "attw", "--pack", ".", "--profile", "node16"], dir);
}
sh("pnpm", ["-r", "--filter", "./packages/*", "publish", "--dry-run", "--no-git-checks"], root);
process.stdout.write(`\nrelease check passed for ${published.length} packages\n`);
