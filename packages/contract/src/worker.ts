// Child-process side of the multi-process promises. Started by ./processes.ts with one JSON
// argument; prints one line per event on stdout, which on Linux is written synchronously to the
// pipe, so the parent sees every "ack" that happened before a SIGKILL.
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import type { PersistBase } from "@persist-kit/core";
import { makeTrialRow } from "./rows.js";

/** The job a worker process runs. */
export interface WorkerJob {
  module: string;
  options: unknown;
  mode: "write-loop" | "write-race" | "write" | "read" | "close-exit";
  symbol: string;
  strategyName: string;
  writer: string;
  /** write-race: how many writes; write: the sequence number to write. */
  count: number;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function nextLine(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once("line", () => resolve()));
  lines.close();
}

async function run(job: WorkerJob): Promise<void> {
  const specifier = job.module.startsWith("file:") ? job.module : pathToFileURL(job.module).href;
  const { createBackend } = (await import(specifier)) as {
    createBackend(options: unknown): Promise<PersistBase> | PersistBase;
  };
  const backend = await createBackend(job.options);
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
