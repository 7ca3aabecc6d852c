import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { createPersist, type ISignalRow } from "@persist-kit/core";
import { SYMBOLS, seededRandom } from "./market.js";
import type { BotEvent, BotOptions } from "./protocol.js";

/** Options of one demo run. */
export interface DemoOptions {
  /** Backend URL, for example `file:/tmp/signals` or `redis://127.0.0.1:6379`. */
  backend: string;
  /** Seeds the market and the kill moments. Default: 42. */
  seed?: number;
  /** How many times the bot is killed with SIGKILL. Default: 5. */
  kills?: number;
  /** How many symbols the bot trades (1 to 8). Default: 3. */
  symbols?: number;
  /** Milliseconds between ticks. Default: 2. */
  tickMs?: number;
  /** Called with a one-line progress message. */
  onProgress?: (message: string) => void;
}

/** One line of a symbol's timeline. */
export interface TimelineEntry {
  symbol: string;
  run: number;
  tick: number;
  text: string;
}

/** What the supervisor concluded. */
export interface DemoReport {
  backend: string;
  seed: number;
  kills: number;
  symbols: string[];
  strategyName: string;
  timeline: TimelineEntry[];
  /** Signals the supervisor saw acknowledged and still open at a kill. */
  openAtKills: number;
  /** Of those, recovered bit-identical. */
  recoveredIntact: number;
  /** Writes in flight at a kill, and whether each was found done or undone (both are correct). */
  inFlightAtKills: number;
  lost: string[];
  duplicated: string[];
  corrupted: string[];
  /** Bot runs that failed, with their stderr. */
  botFailures: string[];
  /** After the last run the supervisor read the store itself: differences from what the bot believed. */
  storeMismatches: string[];
  passed: boolean;
}

interface SymbolState {
  /** The open signal as of the last acknowledged write. */
  confirmed: ISignalRow | null;
  /** A write printed as started but not yet acknowledged. */
  inFlight: { kind: "open"; row: ISignalRow } | { kind: "close"; id: string; reason: string } | undefined;
}

const BOT_PATH = fileURLToPath(new URL("./bot.js", moduleUrl()));

function moduleUrl(): string {
  return typeof __filename === "string" ? pathToFileURL(__filename).href : import.meta.url;
}

const describeRow = (row: ISignalRow) => `${row.position} @ ${row.priceOpen}`;
const shortId = (row: ISignalRow | null | undefined) => (row ? `t${row.id.split("@")[1]}` : "nothing");

/**
 * Starts the bot, kills it with SIGKILL `kills` times at seeded moments, restarts it each time,
 * and checks that every signal open at a kill comes back intact, none duplicated, none lost.
 */
export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  const seed = options.seed ?? 42;
  const kills = options.kills ?? 5;
  const symbolCount = options.symbols ?? 3;
  if (!Number.isInteger(symbolCount) || symbolCount < 1 || symbolCount > SYMBOLS.length) {
    throw new Error(`symbols must be a whole number from 1 to ${SYMBOLS.length}, got ${symbolCount}`);
  }
  const symbols = SYMBOLS.slice(0, symbolCount);
  const random = seededRandom(seed * 7919 + 17);
  const report: DemoReport = {
    backend: options.backend,
    seed,
    kills,
    symbols,
    strategyName: `crash-demo-${seed}-${process.pid}-${Date.now().toString(36)}`,
    timeline: [],
    openAtKills: 0,
    recoveredIntact: 0,
    inFlightAtKills: 0,
    lost: [],
    duplicated: [],
    corrupted: [],
    botFailures: [],
    storeMismatches: [],
    passed: false,
  };
  const states = new Map<string, SymbolState>(
    symbols.map((symbol) => [symbol, { confirmed: null, inFlight: undefined }]),
  );
  const openedIds = new Set<string>();
  let lastTick = -1;

  for (let run = 1; run <= kills + 1; run++) {
    const killAfter = run <= kills ? 2 + Math.floor(random() * 8) : undefined;
    const botOptions: BotOptions = {
      backend: options.backend,
      seed,
      symbols,
      strategyName: report.strategyName,
      fromTick: lastTick + 1,
      untilTick: killAfter === undefined ? lastTick + 150 : lastTick + 1_000_000,
      tickMs: options.tickMs ?? 2,
    };
    const snapshot = new Map([...states].map(([symbol, state]) => [symbol, { ...state }]));
    let tradeEvents = 0;
    let killed = false;
    const child = spawn(process.execPath, [BOT_PATH, JSON.stringify(botOptions)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const exited = new Promise<number | string>((resolve) =>
      child.on("close", (code, signal) => resolve(code ?? signal ?? "")),
    );
    const note = (symbol: string, tick: number, text: string) => report.timeline.push({ symbol, run, tick, text });

    for await (const line of createInterface({ input: child.stdout })) {
      const event = JSON.parse(line) as BotEvent;
      // Resume after the latest tick the bot reached, so no tick (and no signal id) repeats.
      if ("tick" in event && event.type !== "started") lastTick = Math.max(lastTick, event.tick);
      switch (event.type) {
        case "recovered": {
          const before = snapshot.get(event.symbol) as SymbolState;
          checkRecovery(report, event.symbol, before, event.row, run, lastTick, note);
          states.set(event.symbol, { confirmed: event.row, inFlight: undefined });
          break;
        }
        case "tick":
          break;
        case "opening": {
          const state = states.get(event.symbol) as SymbolState;
          if (state.confirmed !== null || openedIds.has(event.row.id)) {
            report.duplicated.push(`${event.row.id} opened while ${state.confirmed?.id ?? "it"} was already open`);
          }
          openedIds.add(event.row.id);
          state.inFlight = { kind: "open", row: event.row };
          tradeEvents++;
          break;
        }
        case "opened": {
          const state = states.get(event.symbol) as SymbolState;
          if (state.inFlight?.kind === "open") state.confirmed = state.inFlight.row;
          state.inFlight = undefined;
          note(event.symbol, event.tick, `opened ${describeRow(state.confirmed as ISignalRow)}`);
          tradeEvents++;
          break;
        }
        case "closing": {
          (states.get(event.symbol) as SymbolState).inFlight = { kind: "close", id: event.id, reason: event.reason };
          tradeEvents++;
          break;
        }
        case "closed": {
          const state = states.get(event.symbol) as SymbolState;
          const reason = state.inFlight?.kind === "close" ? ` ${state.inFlight.reason}` : "";
          states.set(event.symbol, { confirmed: null, inFlight: undefined });
          note(event.symbol, event.tick, `closed${reason}`);
          tradeEvents++;
          break;
        }
        case "started":
        case "finished":
          break;
      }
      if (killAfter !== undefined && !killed && tradeEvents >= killAfter) {
        // Killed the moment this line arrives: often in the middle of the next write.
        child.kill("SIGKILL");
        killed = true;
        for (const [symbol, state] of states) {
          if (state.confirmed === null && state.inFlight === undefined) continue;
          const pending = state.inFlight === undefined ? "" : ` mid-${state.inFlight.kind}`;
          note(symbol, lastTick, `KILL ${run}${pending}`);
        }
      }
    }
    const exit = await exited;
    if (killed ? exit !== "SIGKILL" : exit !== 0) {
      report.botFailures.push(`run ${run} ended with ${exit}: ${stderr.trim()}`);
      break;
    }
    options.onProgress?.(
      `run ${run}/${kills + 1}: ticks ${botOptions.fromTick}-${lastTick}, ${killed ? `killed after ${tradeEvents} trade events` : "finished"}`,
    );
  }

  await compareWithStore(report, states);
  report.passed =
    report.lost.length === 0 &&
    report.duplicated.length === 0 &&
    report.corrupted.length === 0 &&
    report.botFailures.length === 0 &&
    report.storeMismatches.length === 0 &&
    report.openAtKills > 0;
  return report;
}

function checkRecovery(
  report: DemoReport,
  symbol: string,
  before: SymbolState,
  recovered: ISignalRow | null,
  run: number,
  tick: number,
  note: (symbol: string, tick: number, text: string) => void,
): void {
  if (run === 1) return;
  const expected = before.confirmed;
  const inFlight = before.inFlight;
  if (inFlight !== undefined) {
    report.inFlightAtKills++;
    const done = inFlight.kind === "open" ? inFlight.row : null;
    if (isDeepStrictEqual(recovered, expected) || isDeepStrictEqual(recovered, done)) {
      const outcome = isDeepStrictEqual(recovered, done) ? "done" : "undone";
      note(symbol, tick, `recovered ${shortId(recovered)} (the ${inFlight.kind} was ${outcome})`);
      return;
    }
  } else if (isDeepStrictEqual(recovered, expected)) {
    if (expected !== null) {
      report.openAtKills++;
      report.recoveredIntact++;
      note(symbol, tick, `recovered ${shortId(expected)} intact`);
    }
    return;
  }
  if (expected !== null && inFlight === undefined) report.openAtKills++;
  if (recovered === null) {
    report.lost.push(`${symbol}: ${expected?.id} was open at kill ${run - 1} and came back as nothing`);
    note(symbol, tick, `LOST ${shortId(expected)}`);
  } else {
    report.corrupted.push(`${symbol}: expected ${JSON.stringify(expected)}, recovered ${JSON.stringify(recovered)}`);
    note(symbol, tick, `WRONG row ${shortId(recovered)}`);
  }
}

async function compareWithStore(report: DemoReport, states: Map<string, SymbolState>): Promise<void> {
  let persist: Awaited<ReturnType<typeof createPersist>>;
  try {
    persist = await createPersist(report.backend, { importModule: (name) => import(name) });
  } catch (error) {
    report.storeMismatches.push(`could not open the store: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  try {
    for (const [symbol, state] of states) {
      const stored = await persist.readSignalData(symbol, report.strategyName);
      if (!isDeepStrictEqual(stored, state.confirmed)) {
        report.storeMismatches.push(
          `${symbol}: the bot holds ${state.confirmed?.id ?? "nothing"}, the store ${stored?.id ?? "nothing"}`,
        );
      }
      await persist.deleteSignalData(symbol, report.strategyName);
    }
  } catch (error) {
    report.storeMismatches.push(`reading the store failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await persist.close?.();
  }
}

/** The report as text: a timeline per symbol and the verdict. */
export function formatReport(report: DemoReport): string {
  const lines = [`seed ${report.seed}, ${report.kills} kills with SIGKILL, symbols ${report.symbols.join(" ")}`, ""];
  for (const symbol of report.symbols) {
    const items = report.timeline
      .filter((entry) => entry.symbol === symbol)
      .map((entry) => (entry.text.startsWith("KILL") ? entry.text : `t${entry.tick} ${entry.text}`));
    lines.push(...wrap(symbol.padEnd(10), items, 110));
  }
  lines.push("");
  const problems = [
    ...report.lost,
    ...report.duplicated,
    ...report.corrupted,
    ...report.botFailures,
    ...report.storeMismatches,
  ];
  for (const problem of problems) lines.push(`problem: ${problem}`);
  const summary =
    `${report.openAtKills} signals open at a kill, ${report.recoveredIntact} recovered intact, ` +
    `${report.inFlightAtKills} writes in flight at a kill resolved, ${report.lost.length} lost, ` +
    `${report.duplicated.length} duplicated, ${report.corrupted.length} corrupted`;
  lines.push(`verdict: ${report.passed ? "PASS" : "FAIL"}: ${summary}`);
  if (report.openAtKills === 0)
    lines.push("(no signal was open at any kill, so nothing was proven: try another --seed)");
  return lines.join("\n");
}

function wrap(label: string, items: string[], width: number): string[] {
  const indent = " ".repeat(label.length);
  const lines: string[] = [];
  let line = "";
  for (const item of items) {
    if (line === "") line = item;
    else if (label.length + line.length + 3 + item.length > width) {
      lines.push(line);
      line = item;
    } else line = `${line} | ${item}`;
  }
  lines.push(line);
  return lines.map((text, index) => `${index === 0 ? label : indent}${text}`);
}
