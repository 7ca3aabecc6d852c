// SIGKILL through the bridge: a child writes signal, risk and partial data one after another and
// is killed at a random moment. Every record then holds the last acknowledged value or the one in
// flight, intact: never older, never torn. Trials: PERSIST_KIT_BRIDGE_KILL_TRIALS (default 30).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { OwnershipError } from "@persist-kit/core";
import { PersistFile } from "@persist-kit/persist-file";
import { PersistPostgres } from "@persist-kit/persist-postgres";
import { PersistRedis } from "@persist-kit/persist-redis";
import { getPostgresUrl, getRedisUrl } from "@persist-kit/tools-test-servers";
import { describe, expect, it } from "vitest";
import { installPersistKit, persistKitClasses } from "../src/index.js";
import { trialValue } from "./fixtures/trial-value.mjs";

const WRITER = fileURLToPath(new URL("./fixtures/bridge-writer.mjs", import.meta.url));
const TRIALS = Number(process.env.PERSIST_KIT_BRIDGE_KILL_TRIALS ?? 30);
const WHEN = new Date(0);

type Target = {
  backend: "file" | "redis" | "postgres";
  options: Record<string, unknown>;
  exclusive?: { leaseMs: number };
};

async function targets(): Promise<Target[]> {
  const unique = `${process.pid}_${Date.now()}`;
  return [
    { backend: "file", options: { baseDir: mkdtempSync(join(tmpdir(), "persist-kit-bridge-kill-")) } },
    { backend: "redis", options: { url: await getRedisUrl(), prefix: `bridge_kill_${unique}:` } },
    { backend: "postgres", options: { connectionString: await getPostgresUrl(), table: `bridge_kill_${unique}` } },
  ];
}

function open(target: Target) {
  if (target.backend === "file") return new PersistFile(target.options);
  if (target.backend === "redis") return new PersistRedis(target.options);
  return new PersistPostgres(target.options);
}

// Runs the writer until it has acknowledged `after` writes of each domain plus a random few, kills it.
async function killDuringWrites(
  target: Target,
  trial: number,
): Promise<{ acknowledged: Map<string, number>; pid: number }> {
  const child: ChildProcess = spawn(process.execPath, [WRITER, JSON.stringify(target)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const acknowledged = new Map<string, number>();
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const killAt = 1 + ((trial * 7919) % 23);
  // Past the trigger the writer goes on for 0 to 20 ms, so the kill lands anywhere in a write.
  const delayMs = ((trial * 2_654_435_761) >>> 0) % 21;
  let killing = false;
  let buffer = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the writer acknowledged nothing in time; stderr: ${stderr}`)),
      30_000,
    );
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        const [, domain, sequence] = line.split(" ");
        acknowledged.set(domain as string, Number(sequence));
      }
      if (!killing && acknowledged.size === 3 && (acknowledged.get("partial") ?? 0) >= killAt) {
        killing = true;
        clearTimeout(timer);
        setTimeout(() => child.kill("SIGKILL"), delayMs);
      }
    });
    child.on("close", () => {
      clearTimeout(timer);
      if (killing) resolve();
      else reject(new Error(`the writer exited on its own; stderr: ${stderr}`));
    });
  });
  return { acknowledged, pid: child.pid as number };
}

describe("SIGKILL while writing through the bridge", () => {
  it(`leaves the old or the new value of every record, ${TRIALS} trials on file, redis and postgres`, async () => {
    for (const target of await targets()) {
      const seen = { acknowledged: 0, inFlight: 0 };
      try {
        for (let trial = 0; trial < TRIALS; trial++) {
          const { acknowledged } = await killDuringWrites(target, trial);
          const persist = open(target);
          try {
            const classes = persistKitClasses(persist);
            const stored = {
              signal: await new classes.Signal("BTC/USDT", "killed", "binance").readSignalData(),
              risk: (
                (await new classes.Risk("risk_killed", "binance").readPositionData(WHEN)) as [string, unknown][]
              )[0]?.[1],
              partial: Object.values(
                await new classes.Partial("BTC/USDT", "killed", "binance").readPartialData("sig-1", WHEN),
              )[0],
            };
            for (const [domain, value] of Object.entries(stored)) {
              const last = acknowledged.get(domain) ?? 0;
              const sequence = (value as { sequence: number }).sequence;
              expect([last, last + 1], `${target.backend} trial ${trial}: ${domain}`).toContain(sequence);
              expect(value, `${target.backend} trial ${trial}: ${domain} intact`).toStrictEqual(trialValue(sequence));
              if (sequence === last) seen.acknowledged++;
              else seen.inFlight++;
            }
          } finally {
            await persist.close();
          }
        }
        expect(seen.acknowledged + seen.inFlight).toBe(TRIALS * 3);
        console.log(
          `${target.backend}: ${TRIALS} kills, ${seen.acknowledged} records at the acknowledged value, ${seen.inFlight} at the one in flight`,
        );
      } finally {
        if (target.backend === "file") rmSync(target.options.baseDir as string, { recursive: true, force: true });
      }
    }
  }, 600_000);

  it("exclusive: a killed owner's lease keeps the next bot out until it expires, then it takes over the stored value", async () => {
    const leaseMs = 1_500;
    for (const base of await targets()) {
      const target: Target = { ...base, exclusive: { leaseMs } };
      try {
        const { acknowledged, pid } = await killDuringWrites(target, 3);
        const killedAt = performance.now();
        const persist = open(target);
        const installation = await installPersistKit({}, persist, { exclusive: { leaseMs } });
        try {
          const refused = await new installation.classes.Signal("BTC/USDT", "killed", "binance")
            .readSignalData()
            .catch((error: unknown) => error);
          expect(refused, target.backend).toBeInstanceOf(OwnershipError);
          expect((refused as OwnershipError).holder?.pid).toBe(pid);
          let row: { sequence: number } | null = null;
          for (;;) {
            // A new instance each time, as a restarted bot would make.
            const attempt = await new installation.classes.Signal("BTC/USDT", "killed", "binance")
              .readSignalData()
              .catch((error: unknown) => error);
            if (!(attempt instanceof OwnershipError)) {
              row = attempt as { sequence: number };
              break;
            }
            expect(performance.now() - killedAt, `${target.backend}: still held`).toBeLessThan(leaseMs + 5_000);
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          const last = acknowledged.get("signal") ?? 0;
          expect([last, last + 1]).toContain(row?.sequence);
          console.log(
            `${target.backend}: the killed owner's lease kept the next bot out for ${Math.round(performance.now() - killedAt)} ms (leaseMs ${leaseMs})`,
          );
        } finally {
          await installation.close();
          await persist.close();
        }
      } finally {
        if (target.backend === "file") rmSync(target.options.baseDir as string, { recursive: true, force: true });
      }
    }
  }, 120_000);
});
