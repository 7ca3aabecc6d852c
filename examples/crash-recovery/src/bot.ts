// The simulated live bot. It trades a seeded market, keeps at most one open signal per symbol
// through PersistSignalAdapter, and recovers its open signals with waitForInit when it starts.
import { createInterface } from "node:readline";
import {
  createPersist,
  type ISignalRow,
  OwnershipError,
  OwnershipLostError,
  PersistSignalAdapter,
} from "@persist-kit/core";
import { Market } from "./market.js";
import type { BotEvent, BotOptions, BotTicks } from "./protocol.js";

const ENTRY_CHANCE = 0.04;
const TAKE_PROFIT = 0.012;
const STOP_LOSS = 0.008;
// A refused bot asks again this often: each attempt is one read of the lease record, and a
// takeover comes at most this much after the other bot's lease ran out.
const OWNERSHIP_POLL_MS = 50;
// A bot refused for this many leases in a row gives up: the holder is alive, not dead.
const OWNERSHIP_PATIENCE_LEASES = 30;

function emit(event: BotEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function openSignal(options: BotOptions, symbol: string, tick: number, price: number, sideDraw: number): ISignalRow {
  const position = sideDraw < 0.5 ? "long" : "short";
  const direction = position === "long" ? 1 : -1;
  return {
    id: `${symbol}@${tick}`,
    position,
    priceOpen: price,
    priceTakeProfit: Number((price * (1 + direction * TAKE_PROFIT)).toPrecision(8)),
    priceStopLoss: Number((price * (1 - direction * STOP_LOSS)).toPrecision(8)),
    openTimestamp: Date.UTC(2026, 0, 1) + tick * 60_000,
    minuteEstimatedTime: 240,
    symbol,
    strategyName: options.strategyName,
    exchangeName: "demo",
    note: `seed ${options.seed}`,
  };
}

function exitReason(row: ISignalRow, price: number): "take-profit" | "stop-loss" | undefined {
  const long = row.position === "long";
  if (long ? price >= row.priceTakeProfit : price <= row.priceTakeProfit) return "take-profit";
  if (long ? price <= row.priceStopLoss : price >= row.priceStopLoss) return "stop-loss";
  return undefined;
}

async function run(options: BotOptions): Promise<void> {
  const persist = await createPersist(options.backend, { importModule: (name) => import(name) });
  const exclusive = options.exclusive;
  const signals = new PersistSignalAdapter(
    persist,
    exclusive === undefined ? {} : { timeoutMs: exclusive.timeoutMs, exclusive: { leaseMs: exclusive.leaseMs } },
  );
  const { strategyName } = options;
  const open = new Map<string, ISignalRow | null>();
  const refusal = { reported: false };
  for (const symbol of options.symbols) {
    const row = await recoverOwned(signals, options, symbol, refusal);
    open.set(symbol, row);
    emit({ type: "recovered", symbol, row });
  }
  const { fromTick, untilTick } = options.standby ? await readTicks() : options;
  const markets = options.symbols.map((symbol) => new Market(options.seed, symbol));
  emit({ type: "started", tick: fromTick });
  for (let tick = fromTick; tick <= untilTick; tick++) {
    for (const market of markets) {
      const { symbol } = market;
      const { price, entryDraw, sideDraw } = market.at(tick);
      const row = open.get(symbol) ?? null;
      if (row !== null) {
        const reason = exitReason(row, price);
        if (reason === undefined) continue;
        emit({ type: "closing", tick, symbol, id: row.id, reason, price });
        await signals.deletePendingSignal(symbol, strategyName);
        open.set(symbol, null);
        emit({ type: "closed", tick, symbol, id: row.id });
      } else if (entryDraw < ENTRY_CHANCE) {
        const opened = openSignal(options, symbol, tick, price, sideDraw);
        emit({ type: "opening", tick, symbol, row: opened });
        await signals.setPendingSignal(symbol, strategyName, opened);
        open.set(symbol, opened);
        emit({ type: "opened", tick, symbol, id: opened.id });
      }
    }
    emit({ type: "tick", tick });
    await new Promise((resolve) => setTimeout(resolve, options.tickMs));
  }
  emit({ type: "finished", tick: untilTick });
  // Gives up the leases, so the next bot takes over at once instead of waiting for them to run out.
  await signals.close();
  await persist.close?.();
}

/**
 * The key's open signal, once this bot may own the key. Another bot's lease refuses it with
 * OwnershipError: a killed bot's lease runs out by itself within leaseMs, a live bot's never does,
 * so the bot asks again until it gets the key or has waited many leases.
 */
async function recoverOwned(
  signals: PersistSignalAdapter,
  options: BotOptions,
  symbol: string,
  refusal: { reported: boolean },
): Promise<ISignalRow | null> {
  const givesUpAt = performance.now() + OWNERSHIP_PATIENCE_LEASES * (options.exclusive?.leaseMs ?? 0);
  for (;;) {
    try {
      return await signals.waitForInit(symbol, options.strategyName);
    } catch (error) {
      const refused = error instanceof OwnershipError && !(error instanceof OwnershipLostError);
      if (!refused || performance.now() >= givesUpAt) throw error;
      if (!refusal.reported) {
        emit({ type: "refused", symbol, message: error.message, holderPid: error.holder?.pid });
        refusal.reported = true;
      }
      await new Promise((resolve) => setTimeout(resolve, OWNERSHIP_POLL_MS));
    }
  }
}

async function readTicks(): Promise<BotTicks> {
  for await (const line of createInterface({ input: process.stdin })) return JSON.parse(line) as BotTicks;
  throw new Error("stdin closed before the supervisor said which ticks to trade");
}

const argument = process.argv[2];
if (argument === undefined) throw new Error("bot: expected the options as one JSON argument");
run(JSON.parse(argument) as BotOptions).catch((error: unknown) => {
  process.stderr.write(`bot failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
