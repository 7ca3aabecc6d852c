import type { BacktestResult } from "./backends/backtest.js";
import type { InstalledVersion, Machine } from "./environment.js";
import type { FencedResults } from "./fenced.js";
import type { Contender, Measurement, Unavailable } from "./model.js";
import type { Counts } from "./options.js";
import type { InFlightWin, Summary, TargetResult } from "./targets.js";

/** A family as the results record it. */
export interface FamilyResult {
  name: string;
  /** The server and its settings, or why the whole family could not run. */
  description: string;
  available: boolean;
  /** The contenders measured (in their family's order). */
  contenders: Pick<Contender, "name" | "role" | "description" | "goals" | "inFlightNote">[];
  /** Contenders not measured, with the reason. */
  unavailable: Unavailable[];
}

/** Everything a run produced: written as results/latest.json, rendered into the README. */
export interface BenchResults {
  schema: 1;
  startedAt: string;
  durationSeconds: number;
  quick: boolean;
  /** Set when `pnpm bench` could not build every package: a backend may be measured from an older build. */
  buildFailed: boolean;
  /** Set when `pnpm bench -- --no-build` measured the packages as they were already built. */
  buildSkipped?: boolean;
  reps: number;
  only: string[];
  counts: Counts;
  signalBytes: number;
  machine: Machine;
  versions: InstalledVersion[];
  families: FamilyResult[];
  /** Median over rounds of every contender, mode and operation. */
  summaries: Summary[];
  targets: TargetResult[];
  inFlightWins: InFlightWin[];
  backtest: { available: boolean; reason?: string; results: BacktestResult[] };
  /** The adapter's fenced write against the plain one, per backend; absent in runs before it existed. */
  fenced?: FencedResults;
  /** Every round's numbers, for anyone who wants to recompute. */
  measurements: Measurement[];
}
