import assert from "node:assert/strict";
import type { PersistBase } from "@persist-kit/core";
import { recordsOf, type SuiteContext, SYMBOL, sleep } from "../context.js";
import { type AdapterWorker, startAdapterWorker } from "../processes.js";
import { makeTrialRow } from "../rows.js";
import type { RecordAnswer } from "../worker.js";

const OTHER_SYMBOL = "ETH/USDT";

/** The lease and deadline of the ownership and chaos promises: from the options, else 1500 and 500 ms. */
export function ownershipTimes(options: { leaseMs?: number; adapterTimeoutMs?: number }): {
  leaseMs: number;
  timeoutMs: number;
} {
  return { leaseMs: options.leaseMs ?? 1_500, timeoutMs: options.adapterTimeoutMs ?? 500 };
}

function expectOk(answer: RecordAnswer, what: string): unknown {
  assert.equal(answer.error, undefined, `${what}: ${answer.error?.name}: ${answer.error?.message}`);
  return answer.result;
}

function expectError(answer: RecordAnswer, name: string, outcome: string, what: string): void {
  assert.ok(answer.error !== undefined, `${what}: expected ${name}, the call succeeded`);
  assert.equal(answer.error.name, name, `${what}: ${answer.error.message}`);
  assert.equal(answer.error.outcome, outcome, `${what}: outcome`);
}

/** Calls waitForInit until it succeeds; the answers before it, and when it succeeded. */
async function initUntilOwned(
  worker: AdapterWorker,
  symbol: string,
  withinMs: number,
): Promise<{ refusals: RecordAnswer[]; row: unknown; at: number }> {
  const refusals: RecordAnswer[] = [];
  const until = performance.now() + withinMs;
  while (performance.now() < until) {
    const answer = await worker.ask({ op: "init", symbol });
    if (answer.error === undefined) return { refusals, row: answer.result, at: performance.now() };
    assert.equal(answer.error.name, "OwnershipError", `while waiting to take the key: ${answer.error.message}`);
    refusals.push(answer);
    await sleep(50);
  }
  throw new Error(`the key was not taken within ${withinMs} ms; last refusal: ${refusals.at(-1)?.error?.message}`);
}

/**
 * 13. Ownership (`PersistSignalAdapter` with `exclusive`), across processes: one live owner per
 * key; a second owner is refused; an owner killed with SIGKILL is replaced after the lease; an
 * owner paused past its lease writes nothing when it resumes; `close()` hands the key over at once.
 */
export function ownership<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, testTimeout, initializer, options } = suite;
  if (initializer.worker === undefined) return;
  const { leaseMs, timeoutMs } = ownershipTimes(options);
  const adapterOptions = { exclusive: { leaseMs }, timeoutMs };
  const timeout = Math.max(testTimeout, 10 * leaseMs + 30_000);
  const workers: AdapterWorker[] = [];
  const start = async (backend: B, strategyName: string, writer: string) => {
    const worker = await startAdapterWorker(suite.targetOf(backend, strategyName), writer, adapterOptions);
    workers.push(worker);
    return worker;
  };
  const cleanUp = async () => {
    for (const worker of workers.splice(0)) {
      worker.signal("SIGKILL");
      await worker.exited.catch(() => {});
    }
  };

  runner.describe("13. one owner per key (exclusive)", () => {
    runner.it(
      "a second owner in another process is refused with the holder named; reading is allowed; two owners of different symbols both work; close() hands over at once",
      () =>
        withBackend(async (backend) => {
          if (recordsOf(backend) === undefined) return;
          const strategyName = nextStrategy();
          try {
            const first = await start(backend, strategyName, "first");
            const second = await start(backend, strategyName, "second");
            expectOk(await first.ask({ op: "init", symbol: SYMBOL }), "the first owner takes the key");
            expectOk(await first.ask({ op: "write", symbol: SYMBOL, sequence: 1 }), "the owner writes");
            const refused = await second.ask({ op: "init", symbol: SYMBOL });
            expectError(refused, "OwnershipError", "not-applied", "a second owner's waitForInit");
            assert.equal((refused.error?.holder as { pid?: number } | undefined)?.pid, first.pid, "the holder's pid");
            assert.match(refused.error?.message ?? "", new RegExp(`pid ${first.pid}`));
            expectError(
              await second.ask({ op: "write", symbol: SYMBOL, sequence: 1 }),
              "OwnershipError",
              "not-applied",
              "a second owner's write",
            );
            expectError(
              await second.ask({ op: "delete", symbol: SYMBOL }),
              "OwnershipError",
              "not-applied",
              "a second owner's delete",
            );
            assert.deepStrictEqual(
              await backend.readSignalData(SYMBOL, strategyName),
              makeTrialRow("first", 1),
              "reading is allowed, and nothing of the second owner was written",
            );
            // One strategy's symbols split between the two: both keep working, deletes included.
            expectOk(await second.ask({ op: "init", symbol: OTHER_SYMBOL }), "the second owner takes another symbol");
            for (let sequence = 2; sequence <= 12; sequence++) {
              const [a, b] = await Promise.all([
                first.ask({ op: sequence % 4 === 0 ? "delete" : "write", symbol: SYMBOL, sequence }),
                second.ask({ op: sequence % 3 === 0 ? "delete" : "write", symbol: OTHER_SYMBOL, sequence }),
              ]);
              expectOk(a, `the first owner, change ${sequence}`);
              expectOk(b, `the second owner, change ${sequence}`);
            }
            expectOk(await first.ask({ op: "write", symbol: SYMBOL, sequence: 13 }), "the first owner's last write");
            await first.stop();
            const started = performance.now();
            const taken = await initUntilOwned(second, SYMBOL, timeoutMs * 4);
            assert.deepStrictEqual(taken.row, makeTrialRow("first", 13), "the new owner reads the last row");
            assert.equal(taken.refusals.length, 0, "close() released the lease: taken at the first try");
            assert.ok(taken.at - started < leaseMs, "taken before the old lease would have expired");
            expectOk(await second.ask({ op: "write", symbol: SYMBOL, sequence: 14 }), "the new owner writes");
            await second.stop();
            assert.deepStrictEqual(await backend.readSignalData(SYMBOL, strategyName), makeTrialRow("second", 14));
          } finally {
            await cleanUp();
          }
        }),
      timeout,
    );

    runner.it(
      `an owner killed with SIGKILL is replaced by another process within leaseMs + timeoutMs (${leaseMs} + ${timeoutMs} ms)`,
      () =>
        withBackend(async (backend) => {
          if (recordsOf(backend) === undefined) return;
          const strategyName = nextStrategy();
          try {
            const old = await start(backend, strategyName, "old");
            const next = await start(backend, strategyName, "next");
            expectOk(await old.ask({ op: "init", symbol: SYMBOL }), "the old owner takes the key");
            expectOk(await old.ask({ op: "write", symbol: SYMBOL, sequence: 7 }), "the old owner writes");
            old.signal("SIGKILL");
            const killedAt = performance.now();
            await old.exited;
            const taken = await initUntilOwned(next, SYMBOL, leaseMs * 3 + timeoutMs);
            const waited = taken.at - killedAt;
            assert.ok(taken.refusals.length > 0, "refused while the dead owner's lease lasted");
            assert.ok(
              waited <= leaseMs + timeoutMs + 250,
              `taken ${Math.round(waited)} ms after the kill; the bound is ${leaseMs + timeoutMs} ms`,
            );
            assert.deepStrictEqual(taken.row, makeTrialRow("old", 7), "the dead owner's last row, intact");
            expectOk(await next.ask({ op: "write", symbol: SYMBOL, sequence: 8 }), "the new owner writes");
            assert.deepStrictEqual(await backend.readSignalData(SYMBOL, strategyName), makeTrialRow("next", 8));
          } finally {
            await cleanUp();
          }
        }),
      timeout,
    );

    runner.it(
      "an owner paused (SIGSTOP) past its lease writes nothing after it resumes, until it takes the key again",
      () =>
        withBackend(async (backend) => {
          if (recordsOf(backend) === undefined) return;
          const strategyName = nextStrategy();
          try {
            const paused = await start(backend, strategyName, "paused");
            const next = await start(backend, strategyName, "next");
            expectOk(await paused.ask({ op: "init", symbol: SYMBOL }), "the first owner takes the key");
            expectOk(await paused.ask({ op: "write", symbol: SYMBOL, sequence: 1 }), "the first owner writes");
            paused.signal("SIGSTOP");
            try {
              const taken = await initUntilOwned(next, SYMBOL, leaseMs * 3 + timeoutMs);
              assert.deepStrictEqual(taken.row, makeTrialRow("paused", 1));
              expectOk(await next.ask({ op: "write", symbol: SYMBOL, sequence: 2 }), "the new owner writes");
            } finally {
              paused.signal("SIGCONT");
            }
            for (const [op, sequence] of [
              ["write", 3],
              ["delete", 0],
              ["write", 4],
            ] as const) {
              expectError(
                await paused.ask({ op, symbol: SYMBOL, sequence }),
                "OwnershipLostError",
                "not-applied",
                `the resumed owner's ${op}`,
              );
            }
            assert.deepStrictEqual(
              await backend.readSignalData(SYMBOL, strategyName),
              makeTrialRow("next", 2),
              "nothing of the resumed owner was written",
            );
            expectError(
              await paused.ask({ op: "init", symbol: SYMBOL }),
              "OwnershipError",
              "not-applied",
              "taking the key again while the new owner lives",
            );
            await next.stop();
            assert.deepStrictEqual(
              expectOk(
                await paused.ask({ op: "init", symbol: SYMBOL }),
                "taking the key again after the new owner closed",
              ),
              makeTrialRow("next", 2),
            );
            expectOk(await paused.ask({ op: "write", symbol: SYMBOL, sequence: 5 }), "writing again once retaken");
            assert.deepStrictEqual(await backend.readSignalData(SYMBOL, strategyName), makeTrialRow("paused", 5));
          } finally {
            await cleanUp();
          }
        }),
      timeout,
    );
  });
}
