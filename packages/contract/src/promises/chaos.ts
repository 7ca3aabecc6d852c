import assert from "node:assert/strict";
import type { PersistBase } from "@persist-kit/core";
import { recordsOf, type SuiteContext, SYMBOL, sleep } from "../context.js";
import { type AdapterWorker, startAdapterWorker } from "../processes.js";
import type { RecordAnswer } from "../worker.js";
import { ownershipTimes } from "./ownership.js";

/** The chaos operations: from the options, else `PERSIST_KIT_CHAOS_OPS`, else 1000. */
export function chaosOperations(configured: number | undefined): number {
  if (configured !== undefined) return configured;
  const fromEnvironment = Number(process.env.PERSIST_KIT_CHAOS_OPS);
  return Number.isSafeInteger(fromEnvironment) && fromEnvironment > 0 ? fromEnvironment : 1_000;
}

/** One change a worker was asked for, and what became of it. */
interface Change {
  /** The row's sequence (unique over the run), or `null` for a delete. */
  readonly sequence: number | null;
  readonly issuedAt: number;
  settledAt: number;
  result: "pending" | "acknowledged" | "not-applied" | "unknown";
}

/** A small deterministic generator, so a failing run can be replayed from its seed. */
function generator(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/**
 * Contract items 11 and 13 under chaos: several processes with exclusive adapters on one key,
 * sent writes, deletes and takeovers at random while the test kills them (SIGKILL) and pauses
 * them (SIGSTOP, then SIGCONT). In the end the key holds what the last acknowledged change left,
 * or what a change with an unknown outcome after it wrote; never anything older, never a change
 * reported not-applied.
 */
export function chaos<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, initializer, options } = suite;
  if (initializer.worker === undefined) return;
  const { leaseMs, timeoutMs } = ownershipTimes(options);
  const operations = chaosOperations(options.chaosOperations);
  const processes = options.chaosProcesses ?? 3;
  const seed = Number(process.env.PERSIST_KIT_CHAOS_SEED ?? Date.now() % 1_000_000);

  runner.describe("11 and 13 under chaos: random SIGKILL and SIGSTOP of owners", () => {
    runner.it(
      `${processes} processes, ${operations} operations (seed ${seed}): the key ends as the last acknowledged change left it`,
      () =>
        withBackend(async (backend) => {
          if (recordsOf(backend) === undefined) return;
          const strategyName = nextStrategy();
          const target = suite.targetOf(backend, strategyName);
          const adapterOptions = { exclusive: { leaseMs }, timeoutMs };
          const random = generator(seed);
          const changes: Change[] = [];
          let nextSequence = 0;
          let writerCount = 0;
          let issued = 0;
          let acknowledged = 0;
          let kills = 0;
          let pauses = 0;

          interface Slot {
            worker: AdapterWorker;
            busy: boolean;
            paused: boolean;
            mustInit: boolean;
            inFlight: Change | undefined;
          }
          const launch = async (): Promise<Slot> => ({
            worker: await startAdapterWorker(target, `chaos-${++writerCount}`, adapterOptions),
            busy: false,
            paused: false,
            mustInit: true,
            inFlight: undefined,
          });
          const slots: Slot[] = [];
          for (let index = 0; index < processes; index++) slots.push(await launch());
          const running = new Set<Promise<void>>();
          const track = (work: Promise<void>) => {
            running.add(work);
            work.finally(() => running.delete(work));
          };

          const operate = (slot: Slot) => {
            slot.busy = true;
            const roll = random();
            const op = slot.mustInit || roll < 0.1 ? "init" : roll < 0.8 ? "write" : "delete";
            const change: Change | undefined =
              op === "init"
                ? undefined
                : {
                    sequence: op === "write" ? ++nextSequence : null,
                    issuedAt: performance.now(),
                    settledAt: Number.POSITIVE_INFINITY,
                    result: "pending",
                  };
            if (change !== undefined) changes.push(change);
            slot.inFlight = change;
            issued++;
            const asked = slot.worker.ask(
              { op, symbol: SYMBOL, sequence: change?.sequence ?? undefined },
              leaseMs * 10 + 60_000,
            );
            track(
              asked.then(
                (answer: RecordAnswer) => {
                  const error = answer.error;
                  if (op === "init") slot.mustInit = error !== undefined;
                  else if (error?.name === "OwnershipLostError" || error?.name === "OwnershipError")
                    slot.mustInit = true;
                  if (change !== undefined) {
                    change.settledAt = performance.now();
                    change.result =
                      error === undefined
                        ? "acknowledged"
                        : error.outcome === "not-applied"
                          ? "not-applied"
                          : "unknown";
                    if (change.result === "acknowledged") acknowledged++;
                  }
                  slot.inFlight = undefined;
                  slot.busy = false;
                },
                () => {
                  // The process died with the call in flight: its outcome is unknown.
                  if (change !== undefined) {
                    change.settledAt = performance.now();
                    change.result = "unknown";
                  }
                },
              ),
            );
          };

          try {
            while (issued < operations) {
              const roll = random();
              const index = Math.floor(random() * slots.length);
              const slot = slots[index] as Slot;
              // A short run may draw no fault at all: one kill a third of the way in and one pause
              // two thirds in, unless the draws already made them.
              const forceKill = kills === 0 && issued >= operations / 3;
              const forcePause = pauses === 0 && issued >= (2 * operations) / 3;
              if (roll < 0.01 || forceKill) {
                kills++;
                slot.worker.signal("SIGKILL");
                await slot.worker.exited.catch(() => {});
                if (slot.inFlight !== undefined && slot.inFlight.result === "pending") {
                  slot.inFlight.settledAt = performance.now();
                  slot.inFlight.result = "unknown";
                }
                slots[index] = await launch();
              } else if ((roll < 0.025 || forcePause) && !slot.paused) {
                pauses++;
                slot.paused = true;
                slot.worker.signal("SIGSTOP");
                const pauseMs = Math.floor(random() * leaseMs * 1.5);
                track(
                  sleep(pauseMs).then(() => {
                    slot.worker.signal("SIGCONT");
                    slot.paused = false;
                  }),
                );
              } else if (!slot.busy && !slot.paused) {
                operate(slot);
              }
              await sleep(Math.floor(random() * 4));
            }
            while (running.size > 0) await Promise.race(running);
            // Anything still on its way lands (or is refused) now.
            await sleep(timeoutMs * 2);
            const stored = await backend.readSignalData(SYMBOL, strategyName);
            const sequence = stored === null ? null : Number(stored.sequence);
            const lastAcknowledgedIssue = Math.max(
              ...changes.filter((change) => change.result === "acknowledged").map((change) => change.issuedAt),
              Number.NEGATIVE_INFINITY,
            );
            // A change may be the final state when it may have been applied, and no change issued
            // after it settled was acknowledged.
            const allowed = changes.filter(
              (change) =>
                (change.result === "acknowledged" || change.result === "unknown") &&
                change.settledAt >= lastAcknowledgedIssue,
            );
            const explains = allowed.some((change) => change.sequence === sequence);
            const untouched = sequence === null && acknowledged === 0;
            assert.ok(
              explains || untouched,
              `the key holds ${sequence === null ? "nothing" : `change ${sequence}`}, which no allowed change explains; ` +
                `allowed: ${allowed.map((change) => `${change.sequence ?? "delete"}:${change.result}`).join(", ")}; ` +
                `seed ${seed}`,
            );
            const notApplied = changes.find(
              (change) => change.result === "not-applied" && change.sequence === sequence,
            );
            assert.ok(
              sequence === null || notApplied === undefined,
              `the key holds change ${sequence}, reported not-applied (seed ${seed})`,
            );
            const unknown = changes.filter((change) => change.result === "unknown").length;
            const refused = changes.filter((change) => change.result === "not-applied").length;
            process.stdout.write(
              `chaos ${initializer.name}: ${issued} operations, ${acknowledged} acknowledged, ${refused} not applied, ` +
                `${unknown} unknown, ${kills} SIGKILLs, ${pauses} SIGSTOPs; final ${sequence ?? "deleted"} (seed ${seed})\n`,
            );
            assert.ok(acknowledged > 0, "no change was acknowledged: the run proved nothing");
            assert.ok(kills + pauses > 0, "no fault was injected: the run proved nothing");
          } finally {
            for (const slot of slots) {
              slot.worker.signal("SIGCONT");
              slot.worker.signal("SIGKILL");
              await slot.worker.exited.catch(() => {});
            }
          }
        }),
      Math.max(suite.testTimeout, operations * 200 + 120_000),
    );
  });
}
