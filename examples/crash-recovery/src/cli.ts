// persist-kit crash-recovery demo: a bot opens positions, is killed with SIGKILL, comes back and
// carries on. Usage: node dist/cli.js [--backend URL] [--seed N] [--kills N] [--symbols N] [--data DIR]
// [--second-bot]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { redactCredentials } from "@persist-kit/core";
import { formatReport, runDemo } from "./supervisor.js";

const HELP = `persist-kit crash-recovery demo

  --backend URL   where signals are kept (default: PERSIST_URL, else a file store in a temp dir)
                  file:DIR, memory:, redis://..., postgres://..., mongodb://...
  --seed N        seeds the market and the kill moments (default 42)
  --kills N       how many times the bot is killed with SIGKILL (default 5)
  --symbols N     how many symbols the bot trades, 1 to 8 (default 3)
  --data DIR      keep the file store in DIR instead of a temp dir
  --second-bot    every bot takes its keys exclusively; a second bot started beside the first
                  is refused, then takes over once the first is killed (restarts wait for leases)
  --help          this text
`;

function wholeNumber(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} must be a whole number, got ${text}`);
  return value;
}

async function main(): Promise<number> {
  // `pnpm demo -- --seed 7` hands the script its `--` too; parseArgs would read all after it as positionals.
  const args = process.argv.slice(2);
  if (args[0] === "--") args.shift();
  const { values } = parseArgs({
    args,
    options: {
      backend: { type: "string" },
      seed: { type: "string" },
      kills: { type: "string" },
      symbols: { type: "string" },
      data: { type: "string" },
      "second-bot": { type: "boolean" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const temporary =
    (values.backend ?? process.env.PERSIST_URL ?? values.data) !== undefined
      ? undefined
      : mkdtempSync(join(tmpdir(), "persist-kit-demo-"));
  const backend =
    values.backend ?? process.env.PERSIST_URL ?? `file:${resolve(values.data ?? join(temporary as string, "signals"))}`;
  const progress = (message: string) => {
    if (process.stderr.isTTY) process.stderr.write(`\r\u001b[2K${message}`);
    else process.stderr.write(`${message}\n`);
  };
  try {
    process.stdout.write(`persist-kit crash-recovery demo on ${redactCredentials(backend)}\n`);
    const report = await runDemo({
      backend,
      seed: wholeNumber(values.seed, "seed", 42),
      kills: wholeNumber(values.kills, "kills", 5),
      symbols: wholeNumber(values.symbols, "symbols", 3),
      secondBot: values["second-bot"] ?? false,
      onProgress: progress,
    });
    if (process.stderr.isTTY) process.stderr.write("\r\u001b[2K");
    process.stdout.write(`${redactCredentials(formatReport(report))}\n`);
    return report.passed ? 0 : 1;
  } finally {
    if (temporary !== undefined) rmSync(temporary, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
