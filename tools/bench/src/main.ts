// `pnpm bench`: runs the selected families and the backtest, then writes results/latest.json, the
// two charts and the report section of the README, and prints the report.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type BacktestResult, backtestVariants, runBacktest } from "./backends/backtest.js";
import { fileFamily } from "./backends/file.js";
import { memoryFamily } from "./backends/memory.js";
import { mongoFamily } from "./backends/mongo.js";
import { postgresFamily } from "./backends/postgres.js";
import { redisFamily } from "./backends/redis.js";
import type { FamilySetup } from "./backends/setup.js";
import { renderChart } from "./chart.js";
import { loadAverageNow, readMachine, readVersions } from "./environment.js";
import { type FencedResults, runFenced } from "./fenced.js";
import { type Family, inFlightMode, type Measurement } from "./model.js";
import { BACKEND_NAMES, type BackendName, type BenchOptions, countsFor, parseOptions, USAGE } from "./options.js";
import { renderReport, replaceReportSection, resultCharts } from "./report.js";
import type { BenchResults, FamilyResult } from "./results.js";
import { reasonOf, runFamily, type Workload } from "./runner.js";
import { runTag } from "./stores.js";
import { evaluateTargets, inFlightWins, summarize } from "./targets.js";
import { benchKeys, benchRows, SIGNAL_BYTES } from "./workload.js";

const FAMILY_BUILDERS: Record<BackendName, (setup: FamilySetup) => Promise<Family>> = {
  file: fileFamily,
  memory: memoryFamily,
  redis: redisFamily,
  postgres: postgresFamily,
  mongo: mongoFamily,
};

const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    log(reasonOf(error));
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (typeof globalThis.gc !== "function")
    log("note: run with node --expose-gc so garbage is collected between blocks");
  const results = await run(options);
  await writeOutputs(results);
  process.stdout.write(`${renderReport(results)}\n`);
  return 0;
}

async function run(options: BenchOptions): Promise<BenchResults> {
  const started = Date.now();
  const machine = readMachine();
  const counts = countsFor(options.quick);
  const tag = runTag();
  const keys = benchKeys(counts.keys);
  const workload: Workload = { keys, rows: benchRows(keys), inFlight: counts.inFlight, rounds: options.reps };
  const families: FamilyResult[] = [];
  const measurements: Measurement[] = [];
  const setupOf = (name: string) => ({ tag, dataDir: options.dataDir, passes: counts.passes[name as BackendName] });
  for (const name of options.only) {
    if (name === "backtest" || name === "fenced") continue;
    const result = await runOneFamily(name, setupOf(name), workload);
    families.push(result.family);
    measurements.push(...result.measurements);
  }
  const fenced: FencedResults = options.only.includes("fenced")
    ? await runFenced(
        BACKEND_NAMES,
        (name, setup) => FAMILY_BUILDERS[name as BackendName](setup),
        setupOf,
        workload,
        log,
      )
    : { available: false, reason: "not selected (--only)", backends: [], summaries: [], measurements: [] };
  const backtest = options.only.includes("backtest")
    ? await runBacktestSafely(tag, { ...counts.backtest, rounds: options.reps })
    : { available: false, reason: "not selected (--only)", results: [] };
  const inFlightModes = counts.inFlight.map(inFlightMode);
  const measuredFamilies = families.filter((family) => family.available);
  const measuredFenced = fenced.backends.filter((backend) => backend.available);
  machine.loadAverage.end = loadAverageNow();
  return {
    schema: 1,
    startedAt: new Date(started).toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 100) / 10,
    quick: options.quick,
    buildFailed: process.env.PERSIST_KIT_BENCH_BUILD_FAILED === "1",
    buildSkipped: process.env.PERSIST_KIT_BENCH_BUILD_SKIPPED === "1",
    reps: options.reps,
    only: options.only,
    counts,
    signalBytes: SIGNAL_BYTES,
    machine,
    versions: readVersions(),
    families,
    summaries: summarize(measurements),
    targets: [
      ...evaluateTargets(measuredFamilies, measurements, inFlightModes),
      ...evaluateTargets(measuredFenced, fenced.measurements, []),
    ],
    inFlightWins: inFlightWins(measuredFamilies, measurements, inFlightModes),
    backtest,
    fenced,
    measurements,
  };
}

// A family that cannot be set up (server missing, package not built) is reported, not fatal.
async function runOneFamily(
  name: string,
  setup: FamilySetup,
  workload: Workload,
): Promise<{ family: FamilyResult; measurements: Measurement[] }> {
  let family: Family;
  try {
    family = await FAMILY_BUILDERS[name as BackendName](setup);
  } catch (error) {
    log(`[${name}] not available: ${reasonOf(error)}`);
    const description = `not available: ${reasonOf(error)}`;
    return { family: { name, description, available: false, contenders: [], unavailable: [] }, measurements: [] };
  }
  log(`[${name}] ${family.description}`);
  try {
    const run = await runFamily(family, workload, log);
    for (const entry of run.failed) log(`[${name}] not available: ${entry.name}: ${entry.reason}`);
    const contenders = family.contenders.map(({ name, role, description, goals, inFlightNote }) => ({
      name,
      role,
      description,
      ...(goals === undefined ? {} : { goals }),
      ...(inFlightNote === undefined ? {} : { inFlightNote }),
    }));
    const unavailable = [...family.unavailable, ...run.failed];
    const result = { name, description: family.description, available: true, contenders, unavailable };
    return { family: result, measurements: run.measurements };
  } finally {
    await family.close().catch((error: unknown) => log(`[${name}] cleaning up failed: ${reasonOf(error)}`));
  }
}

async function runBacktestSafely(
  tag: string,
  workload: { cycles: number; symbols: number; rounds: number },
): Promise<BenchResults["backtest"]> {
  let results: BacktestResult[];
  try {
    results = await runBacktest(backtestVariants(tag), workload, log);
  } catch (error) {
    return { available: false, reason: reasonOf(error), results: [] };
  }
  for (const result of results) if (result.failed) log(`[backtest] not available: ${result.name}: ${result.failed}`);
  return { available: true, results };
}

async function writeOutputs(results: BenchResults): Promise<void> {
  const resultsDir = path.join(benchDir, "results");
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
  const charts = resultCharts(results);
  await writeFile(path.join(resultsDir, "latency.svg"), renderChart(charts.latency));
  await writeFile(path.join(resultsDir, "throughput.svg"), renderChart(charts.throughput));
  const readmePath = path.join(benchDir, "README.md");
  const readme = await readFile(readmePath, "utf8");
  await writeFile(readmePath, replaceReportSection(readme, renderReport(results)));
  log(`wrote ${path.relative(process.cwd(), resultsDir)}/latest.json, the charts and the README report`);
}

// Some clients (keyv's shared pg pool, unstorage drivers) keep handles open after close; the
// harness is a command, so it ends when its work is done.
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
