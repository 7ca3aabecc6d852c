import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { createPersist, type ISignalRow } from "@persist-kit/core";
import { SYMBOLS, seededRandom } from "./market.js";
import type { BotEvent, BotOptions, BotOwnership, BotTicks } from "./protocol.js";

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
  /**
   * Every bot takes its keys with an exclusive adapter ({@link SECOND_BOT_OWNERSHIP}), and while
   * the first bot runs a second one is started beside it: it must be refused, then take over
   * within leaseMs + timeoutMs of the first bot's SIGKILL and recover its open signals intact.
   * Needs `kills` of 1 or more. Default: false.
   */
  secondBot?: boolean;
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
  /** With `secondBot`: what the second bot did. */
  secondBot: SecondBotReport | undefined;
  passed: boolean;
}

/** The lease and deadline of every bot under `secondBot`: short, so a takeover takes seconds. */
export const SECOND_BOT_OWNERSHIP: Readonly<BotOwnership> = { leaseMs: 2_000, timeoutMs: 500 };

/** What the second bot did, and what the supervisor concluded from it. */
export interface SecondBotReport {
  leaseMs: number;
  timeoutMs: number;
  firstPid: number;
  /** Undefined when it never started (the first bot failed before trading). */
  secondPid: number | undefined;
  /** The OwnershipError message the second bot printed while the first one ran. */
  refusal: string | undefined;
  /** The pid the refusal named as the holder of the key. */
  refusalHolderPid: number | undefined;
  /** From the first bot's SIGKILL to the second bot owning every key. */
  takeoverMs: number | undefined;
  /** Signals open (no write in flight) when the first bot was killed. */
  openAtTakeover: number;
  /** Of those, the ones the second bot recovered bit-identical, as `symbol id`. */
  recoveredAtTakeover: string[];
  /** Each later restart: how long after the previous bot's SIGKILL it owned every key. */
  restartWaitsMs: { run: number; waitedMs: number }[];
  /** What went wrong: no refusal, the wrong holder, a late or missing takeover, a signal not recovered. */
  problems: string[];
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
 * With `secondBot`, the first restart is a second bot started while the first one ran.
 */
export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  const seed = options.seed ?? 42;
  const kills = options.kills ?? 5;
  const symbolCount = options.symbols ?? 3;
  if (!Number.isInteger(symbolCount) || symbolCount < 1 || symbolCount > SYMBOLS.length) {
    throw new Error(`symbols must be a whole number from 1 to ${SYMBOLS.length}, got ${symbolCount}`);
  }
  if (options.secondBot && kills < 1) throw new Error("secondBot needs kills of 1 or more: it takes over after a kill");
  const symbols = SYMBOLS.slice(0, symbolCount);
  const random = seededRandom(seed * 7919 + 17);
  const ownership = options.secondBot ? { ...SECOND_BOT_OWNERSHIP } : undefined;
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
    secondBot: undefined,
    passed: false,
  };
  const states = new Map<string, SymbolState>(
    symbols.map((symbol) => [symbol, { confirmed: null, inFlight: undefined }]),
  );
  const openedIds = new Set<string>();
  let lastTick = -1;
  let killedAt: number | undefined;
  const base = {
    backend: options.backend,
    seed,
    symbols,
    strategyName: report.strategyName,
    tickMs: options.tickMs ?? 2,
    ...(ownership === undefined ? {} : { exclusive: ownership }),
  };
  let standby: BotProcess | undefined;

  try {
    for (let run = 1; run <= kills + 1; run++) {
      const killAfter = run <= kills ? 2 + Math.floor(random() * 8) : undefined;
      const ticks: BotTicks = {
        fromTick: lastTick + 1,
        untilTick: killAfter === undefined ? lastTick + 150 : lastTick + 1_000_000,
      };
      const snapshot = new Map([...states].map(([symbol, state]) => [symbol, { ...state }]));
      const previousKillAt = killedAt;
      let bot: BotProcess;
      if (standby !== undefined) {
        bot = standby;
        standby = undefined;
        bot.start(ticks);
      } else bot = startBot({ ...base, ...ticks });
      let tradeEvents = 0;
      let killed = false;
      let ownedAt: number | undefined;
      const note = (symbol: string, tick: number, text: string) => report.timeline.push({ symbol, run, tick, text });
      const takeover = run === 2 ? report.secondBot : undefined;

      for (let next = await bot.next(); next !== undefined; next = await bot.next()) {
        const { event, at } = next;
        // Resume after the latest tick the bot reached, so no tick (and no signal id) repeats.
        if ("tick" in event && event.type !== "started") lastTick = Math.max(lastTick, event.tick);
        switch (event.type) {
          case "refused": {
            // Only a refusal printed while the first bot was alive shows that its lease kept the second one out.
            const whileAlive = previousKillAt !== undefined && at < previousKillAt;
            if (takeover !== undefined && takeover.refusal === undefined && whileAlive) {
              takeover.refusal = event.message;
              takeover.refusalHolderPid = event.holderPid;
            }
            break;
          }
          case "recovered": {
            const before = snapshot.get(event.symbol) as SymbolState;
            checkRecovery(report, event.symbol, before, event.row, run, lastTick, note);
            if (takeover !== undefined) checkTakeover(takeover, event.symbol, before, event.row);
            states.set(event.symbol, { confirmed: event.row, inFlight: undefined });
            ownedAt = at;
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
          case "started": {
            if (run === 1 && ownership !== undefined) {
              // The first bot owns every key now: a second one beside it must be refused.
              standby = startBot({ ...base, ...ticks, standby: true });
              report.secondBot = newSecondBotReport(ownership, bot.pid, standby.pid);
            }
            break;
          }
          case "finished":
            break;
        }
        if (killAfter !== undefined && !killed && tradeEvents >= killAfter && mayKill(run, standby, states)) {
          // Killed the moment this line arrives: often in the middle of the next write.
          bot.kill();
          killed = true;
          killedAt = performance.now();
          for (const [symbol, state] of states) {
            if (state.confirmed === null && state.inFlight === undefined) continue;
            const pending = state.inFlight === undefined ? "" : ` mid-${state.inFlight.kind}`;
            note(symbol, lastTick, `KILL ${run}${pending}`);
          }
        }
      }
      const exit = await bot.exited;
      if (killed ? exit !== "SIGKILL" : exit !== 0) {
        report.botFailures.push(`run ${run} ended with ${exit}: ${bot.stderr().trim()}`);
        break;
      }
      const waited = ownedAt !== undefined && previousKillAt !== undefined ? ownedAt - previousKillAt : undefined;
      if (takeover !== undefined) takeover.takeoverMs = waited;
      else if (run > 2 && ownership !== undefined && waited !== undefined) {
        report.secondBot?.restartWaitsMs.push({ run, waitedMs: waited });
      }
      options.onProgress?.(
        `run ${run}/${kills + 1}: ${takeover === undefined ? "" : "second bot, "}ticks ${ticks.fromTick}-${lastTick}, ${killed ? `killed after ${tradeEvents} trade events` : "finished"}`,
      );
    }
  } finally {
    // A second bot still waiting (the first one failed) is stopped with the run.
    standby?.kill();
  }

  await compareWithStore(report, states);
  if (report.secondBot !== undefined) concludeSecondBot(report.secondBot);
  else if (options.secondBot) {
    report.botFailures.push("the second bot was never started: the first bot failed before it traded");
  }
  report.passed =
    report.lost.length === 0 &&
    report.duplicated.length === 0 &&
    report.corrupted.length === 0 &&
    report.botFailures.length === 0 &&
    report.storeMismatches.length === 0 &&
    (report.secondBot?.problems.length ?? 0) === 0 &&
    report.openAtKills > 0;
  return report;
}

// Under secondBot the first bot is killed only once the second one has spoken (refused, or
// wrongly let in) and a signal is open for it to take over; a second bot silent this long is not
// waited for (its silence shows as "not refused").
const SECOND_BOT_SILENCE_MS = 30_000;

function mayKill(run: number, standby: BotProcess | undefined, states: Map<string, SymbolState>): boolean {
  if (run !== 1 || standby === undefined) return true;
  const spoken = standby.received() > 0 || performance.now() - standby.startedAt > SECOND_BOT_SILENCE_MS;
  const open = [...states.values()].some((state) => state.confirmed !== null && state.inFlight === undefined);
  return spoken && open;
}

function newSecondBotReport(ownership: BotOwnership, firstPid: number, secondPid: number): SecondBotReport {
  return {
    leaseMs: ownership.leaseMs,
    timeoutMs: ownership.timeoutMs,
    firstPid,
    secondPid,
    refusal: undefined,
    refusalHolderPid: undefined,
    takeoverMs: undefined,
    openAtTakeover: 0,
    recoveredAtTakeover: [],
    restartWaitsMs: [],
    problems: [],
  };
}

// Of the signals open at the first bot's kill, which the second bot got back bit-identical (a
// write in flight may be found done or undone: checkRecovery judges those).
function checkTakeover(takeover: SecondBotReport, symbol: string, before: SymbolState, recovered: ISignalRow | null) {
  if (before.confirmed === null || before.inFlight !== undefined) return;
  takeover.openAtTakeover++;
  if (isDeepStrictEqual(recovered, before.confirmed))
    takeover.recoveredAtTakeover.push(`${symbol} ${shortId(recovered)}`);
  else
    takeover.problems.push(
      `the second bot recovered ${symbol} as ${shortId(recovered)}, not ${shortId(before.confirmed)}`,
    );
}

function concludeSecondBot(takeover: SecondBotReport): void {
  const { firstPid, problems } = takeover;
  const limitMs = takeover.leaseMs + takeover.timeoutMs;
  if (takeover.refusal === undefined) {
    problems.push(`the second bot was not refused while the first bot (pid ${firstPid}) held the keys`);
  } else if (takeover.refusalHolderPid !== firstPid) {
    problems.push(
      `the second bot was refused naming pid ${takeover.refusalHolderPid}, not the first bot's pid ${firstPid}`,
    );
  }
  if (takeover.takeoverMs === undefined) problems.push("the second bot never owned every key");
  else if (takeover.takeoverMs > limitMs) {
    problems.push(
      `the second bot owned every key ${Math.round(takeover.takeoverMs)} ms after the SIGKILL, later than ` +
        `leaseMs + timeoutMs (${limitMs} ms)`,
    );
  }
  if (takeover.openAtTakeover === 0) problems.push("no signal was open when the first bot was killed");
}

/** One event and when the supervisor received it (performance.now()). */
interface ReceivedEvent {
  event: BotEvent;
  at: number;
}

/** One bot process: its events in order, each stamped when it arrived, even those not read yet. */
interface BotProcess {
  readonly pid: number;
  readonly startedAt: number;
  /** The next event; `undefined` once the bot's stdout has ended. */
  next(): Promise<ReceivedEvent | undefined>;
  /** How many lines the bot has printed so far, read or not. */
  received(): number;
  /** Tells a standby bot which ticks to trade. */
  start(ticks: BotTicks): void;
  kill(): void;
  readonly exited: Promise<number | string>;
  stderr(): string;
}

function startBot(botOptions: BotOptions): BotProcess {
  const startedAt = performance.now();
  const child = spawn(process.execPath, [BOT_PATH, JSON.stringify(botOptions)], { stdio: "pipe" });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  // Only a standby reads stdin. One killed before it read its ticks has closed the pipe: its
  // exit tells what happened, the write error adds nothing.
  child.stdin.on("error", () => {});
  if (!botOptions.standby) child.stdin.end();
  const exited = new Promise<number | string>((resolve) =>
    child.on("close", (code, signal) => resolve(code ?? signal ?? "")),
  );
  const queue: { line: string; at: number }[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let received = 0;
  const lines = createInterface({ input: child.stdout });
  lines.on("line", (line) => {
    received++;
    queue.push({ line, at: performance.now() });
    wake?.();
  });
  lines.on("close", () => {
    ended = true;
    wake?.();
  });
  const next = async (): Promise<ReceivedEvent | undefined> => {
    while (queue.length === 0 && !ended) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
    const item = queue.shift();
    return item === undefined ? undefined : { event: JSON.parse(item.line) as BotEvent, at: item.at };
  };
  return {
    pid: child.pid ?? -1,
    startedAt,
    next,
    received: () => received,
    start: (ticks) => child.stdin.end(`${JSON.stringify(ticks)}\n`),
    kill: () => {
      child.kill("SIGKILL");
    },
    exited,
    stderr: () => stderr,
  };
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
  if (report.secondBot !== undefined) lines.push(...secondBotLines(report.secondBot), "");
  const problems = [
    ...report.lost,
    ...report.duplicated,
    ...report.corrupted,
    ...report.botFailures,
    ...report.storeMismatches,
    ...(report.secondBot?.problems ?? []),
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

function secondBotLines(takeover: SecondBotReport): string[] {
  const { leaseMs, timeoutMs } = takeover;
  const ms = (value: number) => `${Math.round(value).toLocaleString("en-US")} ms`;
  const lines = [
    `second bot: every bot takes its keys exclusively (leaseMs ${leaseMs}, timeoutMs ${timeoutMs}); ` +
      `bot pid ${takeover.secondPid} was started beside the first bot, pid ${takeover.firstPid}`,
    takeover.refusal === undefined
      ? "  it was NOT refused"
      : `  refused while pid ${takeover.firstPid} lived: ${takeover.refusal}`,
  ];
  if (takeover.takeoverMs === undefined) lines.push("  it never took over");
  else if (takeover.takeoverMs <= 0) lines.push(`  it owned every key before pid ${takeover.firstPid} was killed`);
  else {
    const recovered = takeover.recoveredAtTakeover.join(", ") || "nothing";
    lines.push(
      `  pid ${takeover.firstPid} killed with SIGKILL; pid ${takeover.secondPid} owned every key ${ms(takeover.takeoverMs)} later ` +
        `(at most leaseMs + timeoutMs = ${ms(leaseMs + timeoutMs)}) and recovered intact: ${recovered}`,
    );
  }
  if (takeover.restartWaitsMs.length > 0) {
    const waits = takeover.restartWaitsMs.map(({ run, waitedMs }) => `run ${run} ${ms(waitedMs)}`).join(", ");
    lines.push(`  later restarts waited for the killed bot's lease, from its SIGKILL: ${waits}`);
  }
  return lines;
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
