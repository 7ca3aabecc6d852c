// Every `$ persist-kit ...` line of the README runs as written, in order, in a fresh folder that
// holds what the README describes (a bot with three open signals, one key owned by it, and a
// backtest-kit ./dump), and prints what the README shows. Numbers (ages, revisions, rates,
// timestamps, pids), URLs and column widths may differ; every word must be the same.
// PERSIST_KIT_README_PRINT=1 prints what each command printed instead of comparing.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { makeSignalRow } from "@persist-kit/contract";
import { createPersist, PersistSignalAdapter } from "@persist-kit/core";
import * as persistFile from "@persist-kit/persist-file";
import { getMongoUrl, getPostgresUrl, getRedisUrl } from "@persist-kit/tools-test-servers";
import { afterAll, expect, it } from "vitest";
import { cli, freshDir, freshScope } from "./cli-helpers.js";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const PRINT = process.env.PERSIST_KIT_README_PRINT === "1";

interface Step {
  command: string;
  expected: string;
}

/** The README's console blocks as commands and their output; `<!-- readme: bot stops -->` is a step of its own. */
function steps(): (Step | "bot stops")[] {
  const found: (Step | "bot stops")[] = [];
  for (const match of README.matchAll(/^```console\n([\s\S]*?)^```|^<!-- readme: bot stops -->$/gm)) {
    if (match[1] === undefined) {
      found.push("bot stops");
      continue;
    }
    let current: Step | undefined;
    for (const text of match[1].split("\n").slice(0, -1)) {
      if (text.startsWith("$ ")) {
        current = { command: text.slice(2), expected: "" };
        found.push(current);
      } else if (current !== undefined) current.expected += `${text}\n`;
    }
  }
  return found;
}

/** A pattern for printed text: words as written, any number where a number is, any URL where a URL is. */
function shape(text: string): RegExp {
  const pattern = text
    .trim()
    .split(/(\w[\w+.-]*:\/\/\S+|\d[\d.,]*(?:e[+-]?\d+)?|\s+|@[\w.-]+)/)
    .map((piece) => {
      if (/^\w[\w+.-]*:\/\//.test(piece)) return "\\S+";
      if (/^\d/.test(piece)) return "[\\d.,e+-]+";
      if (/^\s+$/.test(piece)) return "\\s+";
      if (piece.startsWith("@")) return "@\\S+";
      return piece.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("");
  return new RegExp(`^${pattern}$`);
}

let bot: PersistSignalAdapter | undefined;
let botStore: { close(): Promise<void> } | undefined;

afterAll(async () => {
  await bot?.close();
  await botStore?.close();
});

// The bot of the README: two momentum positions and a grid one it owns, opened 90 minutes ago.
async function prepare(dir: string): Promise<void> {
  const persist = await createPersist(`file:${join(dir, "data")}`, { backends: [persistFile] });
  botStore = persist;
  const opened = Date.now() - 90 * 60_000;
  const row = (sequence: number, symbol: string, strategyName: string, priceOpen: number) =>
    makeSignalRow(sequence, {
      symbol,
      strategyName,
      priceOpen,
      openTimestamp: opened,
      note: "opened on a 4h breakout",
    });
  await persist.writeSignalData("BTC/USDT", "momentum", row(1, "BTC/USDT", "momentum", 0.1 + 0.2 + 64_231));
  await persist.writeSignalData("ETH/USDT", "momentum", row(2, "ETH/USDT", "momentum", 3_412.07));
  bot = new PersistSignalAdapter(persist, { exclusive: true });
  await bot.waitForInit("SOL/USDT", "grid");
  await bot.setPendingSignal("SOL/USDT", "grid", row(3, "SOL/USDT", "grid", 141.3));
  // What backtest-kit 19.5's file store holds for one open position: <baseDir>/<entity>/<id>.json.
  const file = join(dir, "dump", "data", "signal", "XRP/USDT_breakout_binance", "XRP/USDT.json");
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify({
      id: "bk-1",
      symbol: "XRP/USDT",
      strategyName: "breakout",
      exchangeName: "binance",
      position: "long",
      priceOpen: 0.5123,
      priceTakeProfit: 0.55,
      priceStopLoss: 0.49,
      openTimestamp: opened,
      minuteEstimatedTime: 240,
    }),
  );
}

it("runs every persist-kit command of the README and prints what it shows", async () => {
  const dir = freshDir("readme");
  await prepare(dir);
  const env = {
    DATABASE_URL: `${await getPostgresUrl()}?scope=${freshScope("readme")}`,
    REDIS_URL: `${await getRedisUrl()}?scope=${freshScope("readme")}`,
    MONGO_URL: `${await getMongoUrl()}?scope=${freshScope("readme")}`,
  };
  const all = steps();
  expect(all.filter((step) => step !== "bot stops").length).toBeGreaterThanOrEqual(10);
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    for (const step of all) {
      if (step === "bot stops") {
        await bot?.close();
        bot = undefined;
        continue;
      }
      const [program, ...args] = step.command.split(/\s+/);
      expect(program).toBe("persist-kit");
      const ran = await cli(args, { env });
      if (PRINT) {
        process.stdout.write(`$ ${step.command}\n${ran.stdout}${ran.stderr}[exit ${ran.status}]\n\n`);
        continue;
      }
      const pattern = shape(step.expected);
      const printed = [`${ran.stdout}${ran.stderr}`, `${ran.stderr}${ran.stdout}`].map((text) => text.trim());
      expect(
        printed.some((text) => pattern.test(text)),
        `$ ${step.command}\nprinted:\n${printed[0]}\nREADME:\n${step.expected}`,
      ).toBe(true);
    }
  } finally {
    process.chdir(cwd);
  }
});
