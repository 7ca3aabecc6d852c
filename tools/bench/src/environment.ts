import { readFileSync, realpathSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The machine a run measured. */
export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  kernel: string;
  platform: string;
  /** 1-minute load average at the start and the end: a busy machine shows here. */
  loadAverage: { start: number; end?: number };
}

/** The machine, read now. */
export function readMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: os.release(),
    platform: `${os.platform()} ${os.arch()}`,
    loadAverage: { start: round2(os.loadavg()[0] ?? 0) },
  };
}

/** The 1-minute load average now. */
export function loadAverageNow(): number {
  return round2(os.loadavg()[0] ?? 0);
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/** One installed package: who asked for it, and the version found on disk. */
export interface InstalledVersion {
  name: string;
  /** The package whose dependency this is, e.g. "tools/bench" or "@persist-kit/persist-redis". */
  usedBy: string;
  version: string;
}

const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const repoDir = path.resolve(benchDir, "../..");

// Which packages to report, and from which package's point of view they resolve: each backend's
// driver is looked up from the backend's folder, so a second copy of a driver would show.
const VERSION_SOURCES: { from: string; usedBy: string; names: string[] }[] = [
  {
    from: benchDir,
    usedBy: "tools/bench",
    names: [
      "@persist-kit/core",
      "@persist-kit/persist-file",
      "@persist-kit/persist-redis",
      "@persist-kit/persist-postgres",
      "@persist-kit/persist-mongo",
      "ioredis",
      "redis",
      "pg",
      "mongodb",
      "keyv",
      "@keyv/redis",
      "@keyv/postgres",
      "@keyv/mongo",
      "unstorage",
      "write-file-atomic",
      "tsx",
    ],
  },
  { from: path.join(repoDir, "packages/persist-redis"), usedBy: "@persist-kit/persist-redis", names: ["ioredis"] },
  { from: path.join(repoDir, "packages/persist-postgres"), usedBy: "@persist-kit/persist-postgres", names: ["pg"] },
  { from: path.join(repoDir, "packages/persist-mongo"), usedBy: "@persist-kit/persist-mongo", names: ["mongodb"] },
  { from: packageDir("@keyv/redis", benchDir), usedBy: "@keyv/redis", names: ["@redis/client"] },
  { from: packageDir("@keyv/postgres", benchDir), usedBy: "@keyv/postgres", names: ["pg"] },
  { from: packageDir("@keyv/mongo", benchDir), usedBy: "@keyv/mongo", names: ["mongodb"] },
  { from: packageDir("unstorage", benchDir), usedBy: "unstorage (redis driver)", names: ["ioredis"] },
];

/** The version of every package the report names, read from the installed package.json files. */
export function readVersions(): InstalledVersion[] {
  return VERSION_SOURCES.flatMap(({ from, usedBy, names }) =>
    names.map((name) => ({ name, usedBy, version: installedVersion(name, from) })),
  );
}

/** The version in `name`'s package.json as Node would find it from `fromDir`, or "not installed". */
export function installedVersion(name: string, fromDir: string): string {
  const dir = packageDir(name, fromDir);
  try {
    const manifest = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { version?: string };
    return manifest.version ?? "unknown";
  } catch {
    return "not installed";
  }
}

// Walks up node_modules folders like Node's resolution does; pnpm links each package's
// dependencies beside it, so this follows the real (symlinked) location.
function packageDir(name: string, fromDir: string): string {
  let dir = fromDir;
  for (;;) {
    const candidate = path.join(dir, "node_modules", name);
    try {
      readFileSync(path.join(candidate, "package.json"));
      return realpathSync(candidate);
    } catch {
      const parent = path.dirname(dir);
      if (parent === dir) return path.join(fromDir, "node_modules", name);
      dir = parent;
    }
  }
}
