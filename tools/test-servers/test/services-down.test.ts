import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const servicesScript = fileURLToPath(new URL("../../services/services.mjs", import.meta.url));

interface ServicesState {
  dataDir: string;
  servers: Record<string, { ports: number[]; processes: { pid: number }[] }>;
}

describe("services.mjs down stops exactly what up started", () => {
  it("leaves no server process (nor a postgres backend) running and removes the data dir", async () => {
    // A separate state dir: this instance picks its own free ports beside any servers already up.
    const stateDir = mkdtempSync(join(tmpdir(), "persist-kit-services-test-"));
    const env = { ...process.env, PERSIST_KIT_SERVICES_DIR: stateDir };
    try {
      await services(["up", "--only", "redis,postgres"], env);
      const state = JSON.parse(readFileSync(join(stateDir, "state.json"), "utf8")) as ServicesState;
      expect(Object.keys(state.servers).sort()).toEqual(["postgres", "redis"]);

      const serverPids = Object.values(state.servers).flatMap((server) => server.processes.map((proc) => proc.pid));
      const allPids = [...serverPids, ...serverPids.flatMap(childPids)];
      expect(allPids.length).toBeGreaterThan(serverPids.length);
      for (const pid of allPids) expect(signalZero(pid)).toBe("alive");

      await services(["down"], env);

      for (const pid of allPids) expect(signalZero(pid)).toBe("ESRCH");
      expect(existsSync(state.dataDir)).toBe(false);
      expect(existsSync(join(stateDir, "state.json"))).toBe(false);
      expect(existsSync(join(stateDir, "env"))).toBe(false);
    } finally {
      // Stops the servers even when an assertion above failed; a no-op after a successful down.
      await services(["down"], env).catch(() => undefined);
      rmSync(stateDir, { recursive: true, force: true });
    }
  }, 120_000);
});

async function services(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  await promisify(execFile)(process.execPath, [servicesScript, ...args], { env, timeout: 110_000 });
}

/** "alive", or the error code of kill(pid, 0): "ESRCH" once the process is gone. */
function signalZero(pid: number): string {
  try {
    process.kill(pid, 0);
    return "alive";
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

/** Children of pid, from /proc (the postmaster's backends and background workers). */
function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parentPid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parentPid === pid) children.push(Number(entry));
    } catch {
      // The process exited while we were reading.
    }
  }
  return children;
}
