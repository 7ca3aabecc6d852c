// Child-process side of the multi-process promises. Started by ./processes.ts with one JSON
// argument; prints one line per event on stdout, which on Linux is written synchronously to the
// pipe, so the parent sees every "ack" that happened before a SIGKILL.
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { type PersistBase, PersistSignalAdapter, type RecordStore, type SignalAdapterOptions } from "@persist-kit/core";
import { makeTrialRow } from "./rows.js";

/** The job a worker process runs. */
export interface WorkerJob {
  module: string;
  options: unknown;
  mode: "write-loop" | "write-race" | "write" | "read" | "close-exit" | "records" | "adapter";
  symbol: string;
  strategyName: string;
  writer: string;
  /** write-race: how many writes; write: the sequence number to write. */
  count: number;
  /** adapter: the options of the worker's `PersistSignalAdapter`. */
  adapterOptions?: SignalAdapterOptions;
}

/** One command of the "adapter" mode, a line of JSON on stdin; `write` stores `makeTrialRow(writer, sequence)`. */
export interface AdapterCommand {
  id: number;
  op: "init" | "write" | "delete" | "close";
  symbol: string;
  sequence?: number;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function nextLine(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once("line", () => resolve()));
  lines.close();
}

/** One command of the "records" mode, a line of JSON on stdin. */
export interface RecordCommand {
  id: number;
  op: "read" | "write" | "delete";
  key: { namespace: string; parts: string[] };
  json?: string;
  condition?: { revision: number } | { below: number };
}

/** The answer to a {@link RecordCommand}, a line of JSON on stdout. */
export interface RecordAnswer {
  id: number;
  result?: unknown;
  error?: { name: string; code?: string; outcome?: string; message: string; holder?: unknown };
}

interface WorkerModule {
  createBackend(options: unknown): Promise<PersistBase> | PersistBase;
  createRecordStore?(options: unknown): Promise<RecordStore> | RecordStore;
}

// Answers record-store commands until stdin ends; each command runs as soon as it arrives, so
// commands sent to several workers at once really race.
async function serveRecords(store: RecordStore): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  const running: Promise<void>[] = [];
  for await (const line of lines) {
    if (line.trim() === "") continue;
    const command = JSON.parse(line) as RecordCommand;
    running.push(
      runRecordCommand(store, command).then(
        (result) => say(JSON.stringify({ id: command.id, result } satisfies RecordAnswer)),
        (error: unknown) => say(JSON.stringify({ id: command.id, error: describeError(error) } satisfies RecordAnswer)),
      ),
    );
  }
  await Promise.all(running);
}

function runRecordCommand(store: RecordStore, command: RecordCommand): Promise<unknown> {
  const options = command.condition === undefined ? {} : { condition: command.condition };
  switch (command.op) {
    case "read":
      return store.read(command.key);
    case "write":
      return store.write(command.key, command.json ?? "null", options);
    case "delete":
      return store.delete(command.key, options);
  }
}

function describeError(error: unknown): NonNullable<RecordAnswer["error"]> {
  const { name, code, outcome, message, holder } = (error ?? {}) as Record<string, unknown>;
  return {
    name: typeof name === "string" ? name : "Error",
    code: typeof code === "string" ? code : undefined,
    outcome: typeof outcome === "string" ? outcome : undefined,
    message: typeof message === "string" ? message : String(error),
    holder,
  };
}

// Answers adapter commands until stdin ends (or a "close" command); each runs as soon as it
// arrives, so the adapter itself keeps per-key call order.
async function serveAdapter(backend: PersistBase, job: WorkerJob): Promise<void> {
  const adapter = new PersistSignalAdapter(backend, job.adapterOptions ?? {});
  const lines = createInterface({ input: process.stdin });
  const running: Promise<void>[] = [];
  const answer = (id: number, work: Promise<unknown>) =>
    work.then(
      (result) => say(JSON.stringify({ id, result: result ?? null } satisfies RecordAnswer)),
      (error: unknown) => say(JSON.stringify({ id, error: describeError(error) } satisfies RecordAnswer)),
    );
  for await (const line of lines) {
    if (line.trim() === "") continue;
    const command = JSON.parse(line) as AdapterCommand;
    const { symbol } = command;
    if (command.op === "close") {
      await Promise.allSettled(running);
      await answer(command.id, adapter.close());
      lines.close();
      break;
    }
    const work =
      command.op === "init"
        ? adapter.waitForInit(symbol, job.strategyName)
        : command.op === "write"
          ? adapter.setPendingSignal(symbol, job.strategyName, makeTrialRow(job.writer, command.sequence ?? 0))
          : adapter.deletePendingSignal(symbol, job.strategyName);
    running.push(answer(command.id, work));
  }
  await Promise.allSettled(running);
}

async function run(job: WorkerJob): Promise<void> {
  const specifier = job.module.startsWith("file:") ? job.module : pathToFileURL(job.module).href;
  const workerModule = (await import(specifier)) as WorkerModule;
  if (job.mode === "records") {
    const store = workerModule.createRecordStore
      ? await workerModule.createRecordStore(job.options)
      : ((await workerModule.createBackend(job.options)) as { records?: RecordStore }).records;
    if (store === undefined)
      throw new Error("the worker module gives no record store (createRecordStore or backend.records)");
    say("ready");
    await serveRecords(store);
    await store.close();
    return;
  }
  const backend = await workerModule.createBackend(job.options);
  if (job.mode === "adapter") {
    say("ready");
    await serveAdapter(backend, job);
    await backend.close?.();
    return;
  }
  const { symbol, strategyName, writer } = job;
  switch (job.mode) {
    case "write-loop":
      for (let sequence = 1; ; sequence++) {
        await backend.writeSignalData(symbol, strategyName, makeTrialRow(writer, sequence));
        say(`ack ${sequence}`);
      }
    case "write-race":
      say("ready");
      await nextLine();
      for (let sequence = 1; sequence <= job.count; sequence++) {
        await backend.writeSignalData(symbol, strategyName, makeTrialRow(writer, sequence));
      }
      say("done");
      break;
    case "write":
      await backend.writeSignalData(symbol, strategyName, makeTrialRow(writer, job.count));
      say(`ack ${job.count}`);
      break;
    case "read":
      say(JSON.stringify({ row: await backend.readSignalData(symbol, strategyName) }));
      break;
    case "close-exit":
      await backend.writeSignalData(symbol, strategyName, makeTrialRow(writer, 1));
      await backend.readSignalData(symbol, strategyName);
      await backend.deleteSignalData(symbol, strategyName);
      say("closing");
      break;
  }
  // Without close() a backend may hold sockets or timers open; the "close-exit" job relies on
  // the process then exiting by itself.
  await backend.close?.();
}

const argument = process.argv[2];
if (argument === undefined) throw new Error("worker: expected one JSON argument");
run(JSON.parse(argument) as WorkerJob).catch((error: unknown) => {
  process.stderr.write(`worker failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
