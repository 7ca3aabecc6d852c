import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";
import type { ISignalRow, PersistBase } from "@persist-kit/core";
import { makeTrialRow } from "./rows.js";
import type { WorkerAccess } from "./types.js";
import type { AdapterCommand, RecordAnswer, RecordCommand, WorkerJob } from "./worker.js";

// The worker is built beside this file: dist/worker.js (ESM) for both builds of the suite.
const WORKER_PATH = fileURLToPath(new URL("./worker.js", importMetaUrl()));

function importMetaUrl(): string {
  // tsup's CommonJS build has no import.meta; __filename stands in for it there.
  return typeof __filename === "string" ? pathToFileURL(__filename).href : import.meta.url;
}

/** Where the child processes write: a worker module and its options. */
export interface ProcessTarget {
  worker: Pick<WorkerAccess<PersistBase>, "module" | "execArgv">;
  /** What `worker.module`'s `createBackend` receives. */
  options: unknown;
  symbol: string;
  strategyName: string;
}

interface RunningWorker {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the exit code (or signal name) once stdout is drained. */
  exited: Promise<number | string>;
  /** Resolves when a line satisfying `predicate` has arrived. */
  waitForLine(predicate: (line: string) => boolean, timeoutMs: number): Promise<string>;
  stderr(): string;
}

function startWorker(
  target: ProcessTarget,
  job: Pick<WorkerJob, "mode" | "writer" | "count" | "adapterOptions">,
): RunningWorker {
  const fullJob: WorkerJob = {
    module: target.worker.module,
    options: target.options,
    symbol: target.symbol,
    strategyName: target.strategyName,
    ...job,
  };
  const child = spawn(process.execPath, [...(target.worker.execArgv ?? []), WORKER_PATH, JSON.stringify(fullJob)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let stdoutBuffer = "";
  let stderrText = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdoutBuffer += chunk;
    const parts = stdoutBuffer.split("\n");
    stdoutBuffer = parts.pop() ?? "";
    lines.push(...parts);
    for (const wake of [...waiters]) wake();
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderrText += chunk;
  });
  let closed = false;
  const exited = new Promise<number | string>((resolve, reject) => {
    child.on("error", (error) => {
      closed = true;
      for (const wake of [...waiters]) wake();
      reject(error);
    });
    child.on("close", (code, signal) => {
      // Set before waking the waiters, so a worker that exits without the expected line fails at once.
      closed = true;
      for (const wake of [...waiters]) wake();
      resolve(code ?? signal ?? "unknown");
    });
  });
  const waitForLine = (predicate: (line: string) => boolean, timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`worker gave no expected line within ${timeoutMs} ms; stderr: ${stderrText}`));
      }, timeoutMs);
      const check = () => {
        const line = lines.find(predicate);
        if (line !== undefined || closed) {
          clearTimeout(timer);
          waiters.delete(check);
          if (line !== undefined) resolve(line);
          else reject(new Error(`worker exited before the expected line; stderr: ${stderrText}`));
        }
      };
      waiters.add(check);
      check();
    });
  return { child, lines, exited, waitForLine, stderr: () => stderrText };
}

async function expectCleanExit(worker: RunningWorker, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      worker.child.kill("SIGKILL");
      reject(new Error(`worker did not exit within ${timeoutMs} ms after close(); something kept it alive`));
    }, timeoutMs);
  });
  try {
    const code = await Promise.race([worker.exited, timeout]);
    assert.equal(code, 0, `worker exited with ${code}; stderr: ${worker.stderr()}`);
  } finally {
    clearTimeout(timer);
  }
}

// A small deterministic generator, so a failing trial can be replayed from its number.
function delayFor(trial: number, maxMs: number): number {
  let x = (trial + 1) * 2_654_435_761;
  x ^= x >>> 13;
  x = Math.imul(x, 1_597_334_677);
  return ((x >>> 0) % 1000) * (maxMs / 1000);
}

/** What {@link runKillTrials} observed. */
export interface KillTrialReport {
  trials: number;
  /** Trials whose read-back row was the last acknowledged one. */
  sawAcknowledged: number;
  /** Trials whose read-back row was the write in flight at the kill. */
  sawInFlight: number;
}

/**
 * Contract items 4 and 5: a child writes continuously and is killed with SIGKILL at a random
 * moment, `trials` times. After each kill, `backend` (in this process) must read a valid row that
 * is the last acknowledged write or the one in flight: never older, never torn, never unparsable.
 */
export async function runKillTrials(
  backend: PersistBase,
  target: ProcessTarget,
  options: { trials: number; maxKillDelayMs?: number; ackTimeoutMs?: number },
): Promise<KillTrialReport> {
  const report: KillTrialReport = { trials: 0, sawAcknowledged: 0, sawInFlight: 0 };
  for (let trial = 0; trial < options.trials; trial++) {
    const writer = `trial-${trial}`;
    const worker = startWorker(target, { mode: "write-loop", writer, count: 0 });
    await worker.waitForLine((line) => line.startsWith("ack "), options.ackTimeoutMs ?? 20_000);
    await new Promise((resolve) => setTimeout(resolve, delayFor(trial, options.maxKillDelayMs ?? 25)));
    worker.child.kill("SIGKILL");
    await worker.exited;
    const acknowledged = Math.max(...worker.lines.filter((l) => l.startsWith("ack ")).map((l) => Number(l.slice(4))));
    const row = await backend.readSignalData(target.symbol, target.strategyName);
    assert.ok(row !== null, `trial ${trial}: nothing stored after ${acknowledged} acknowledged writes`);
    const sequence = Number(row.sequence);
    assert.equal(row.writer, writer, `trial ${trial}: read a row of ${String(row.writer)}, not of this trial`);
    assert.ok(
      sequence === acknowledged || sequence === acknowledged + 1,
      `trial ${trial}: read sequence ${sequence}, but ${acknowledged} was acknowledged`,
    );
    assert.deepStrictEqual(row, makeTrialRow(writer, sequence), `trial ${trial}: row ${sequence} is not intact`);
    report.trials++;
    if (sequence === acknowledged) report.sawAcknowledged++;
    else report.sawInFlight++;
  }
  return report;
}

/**
 * Contract item 6: `writers` processes each write `writesPerWriter` rows to one key at the same
 * moment. Afterwards the key must hold one writer's last row, intact.
 */
export async function runConcurrentWriters(
  backend: PersistBase,
  target: ProcessTarget,
  options: { writers: number; writesPerWriter: number; timeoutMs?: number },
): Promise<ISignalRow> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const workers = Array.from({ length: options.writers }, (_, index) =>
    startWorker(target, { mode: "write-race", writer: `writer-${index}`, count: options.writesPerWriter }),
  );
  await Promise.all(workers.map((worker) => worker.waitForLine((line) => line === "ready", timeoutMs)));
  // Released together, so the writes really overlap.
  for (const worker of workers) worker.child.stdin?.end("go\n");
  await Promise.all(workers.map((worker) => worker.waitForLine((line) => line === "done", timeoutMs)));
  await Promise.all(workers.map((worker) => expectCleanExit(worker, timeoutMs)));
  const row = await backend.readSignalData(target.symbol, target.strategyName);
  assert.ok(row !== null, "nothing stored after concurrent writers finished");
  const finals = workers.map((_, index) => makeTrialRow(`writer-${index}`, options.writesPerWriter));
  assert.ok(
    finals.some((final) => isDeepStrictEqual(row, final)),
    `stored row is not any writer's last row: ${JSON.stringify(row).slice(0, 200)}`,
  );
  return row;
}

/** Contract item 5: a row written and acknowledged by a child that then exits is read back here. */
export async function writeInFreshProcess(
  target: ProcessTarget,
  sequence: number,
  timeoutMs = 30_000,
): Promise<ISignalRow> {
  const worker = startWorker(target, { mode: "write", writer: "fresh-writer", count: sequence });
  await expectCleanExit(worker, timeoutMs);
  assert.ok(
    worker.lines.includes(`ack ${sequence}`),
    `the writer process did not acknowledge; stderr: ${worker.stderr()}`,
  );
  return makeTrialRow("fresh-writer", sequence);
}

/** Contract item 5: what this process wrote is read by a new process. */
export async function readInFreshProcess(target: ProcessTarget, timeoutMs = 30_000): Promise<ISignalRow | null> {
  const worker = startWorker(target, { mode: "read", writer: "fresh-reader", count: 0 });
  await expectCleanExit(worker, timeoutMs);
  const line = worker.lines.find((l) => l.startsWith("{"));
  assert.ok(line !== undefined, `the reader process printed nothing; stderr: ${worker.stderr()}`);
  return (JSON.parse(line) as { row: ISignalRow | null }).row;
}

/** Contract item 9: after write, read, delete and close(), the child exits by itself. */
export async function exitsAfterClose(target: ProcessTarget, timeoutMs = 15_000): Promise<void> {
  const worker = startWorker(target, { mode: "close-exit", writer: "closer", count: 0 });
  await expectCleanExit(worker, timeoutMs);
}

/** A child process that runs record-store commands on the same store, for races and fresh-process reads. */
export interface RecordWorker {
  /** Sends one command and resolves with its result; rejects with the child's error description. */
  send(command: Omit<RecordCommand, "id">): Promise<unknown>;
  /** Sends one command and resolves with the whole answer (result or error). */
  ask(command: Omit<RecordCommand, "id">): Promise<RecordAnswer>;
  /** Ends stdin and waits for a clean exit. */
  stop(): Promise<void>;
}

/** Starts a child that opens the record store of `target` (its `createRecordStore`, or `createBackend(...).records`). */
export async function startRecordWorker(
  target: Pick<ProcessTarget, "worker" | "options">,
  timeoutMs = 30_000,
): Promise<RecordWorker> {
  const worker = startWorker(
    { ...target, symbol: "-", strategyName: "-" },
    { mode: "records", writer: "records", count: 0 },
  );
  await worker.waitForLine((line) => line === "ready", timeoutMs);
  let nextId = 0;
  const ask = async (command: Omit<RecordCommand, "id">): Promise<RecordAnswer> => {
    const id = ++nextId;
    const prefix = `{"id":${id},`;
    worker.child.stdin?.write(`${JSON.stringify({ ...command, id })}\n`);
    const line = await worker.waitForLine((candidate) => candidate.startsWith(prefix), timeoutMs);
    return JSON.parse(line) as RecordAnswer;
  };
  return {
    ask,
    async send(command) {
      const answer = await ask(command);
      if (answer.error !== undefined) {
        throw Object.assign(
          new Error(`worker ${command.op} failed: ${answer.error.name}: ${answer.error.message}`),
          answer.error,
        );
      }
      return answer.result;
    },
    async stop() {
      worker.child.stdin?.end();
      await expectCleanExit(worker, timeoutMs);
    },
  };
}

/** A child process that runs a `PersistSignalAdapter` on the same store, for ownership and chaos. */
export interface AdapterWorker {
  readonly pid: number;
  /** Sends one command; resolves with the answer (result or error) or rejects if the child dies first. */
  ask(command: Omit<AdapterCommand, "id">, timeoutMs?: number): Promise<RecordAnswer>;
  /** Sends a signal to the child: SIGKILL, SIGSTOP, SIGCONT. */
  signal(name: NodeJS.Signals): void;
  /** Resolves with the exit code or signal once the child is gone. */
  readonly exited: Promise<number | string>;
  /** Sends "close" (releasing its leases) and waits for a clean exit. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Starts a child with a `PersistSignalAdapter` over the store of `target`, writing rows of `writer`. */
export async function startAdapterWorker(
  target: ProcessTarget,
  writer: string,
  adapterOptions: WorkerJob["adapterOptions"],
  timeoutMs = 30_000,
): Promise<AdapterWorker> {
  const worker = startWorker(target, { mode: "adapter", writer, count: 0, adapterOptions });
  // A command sent just as the child is killed meets a closed pipe: its answer never comes, and
  // `ask` says so; the pipe error itself is expected.
  worker.child.stdin?.on("error", () => {});
  await worker.waitForLine((line) => line === "ready", timeoutMs);
  let nextId = 0;
  const ask = async (command: Omit<AdapterCommand, "id">, askTimeoutMs = timeoutMs): Promise<RecordAnswer> => {
    const id = ++nextId;
    const prefix = `{"id":${id},`;
    worker.child.stdin?.write(`${JSON.stringify({ ...command, id })}\n`);
    const line = await worker.waitForLine((candidate) => candidate.startsWith(prefix), askTimeoutMs);
    return JSON.parse(line) as RecordAnswer;
  };
  return {
    pid: worker.child.pid ?? -1,
    ask,
    signal: (name) => {
      worker.child.kill(name);
    },
    exited: worker.exited,
    async stop(stopTimeoutMs = timeoutMs) {
      const answer = await ask({ op: "close", symbol: "-" }, stopTimeoutMs);
      if (answer.error !== undefined) throw new Error(`close failed: ${answer.error.message}`);
      worker.child.stdin?.end();
      await expectCleanExit(worker, stopTimeoutMs);
    },
  };
}
