import os from "node:os";

/**
 * What `--only` selects from; `fenced` is the adapter's fenced write against the plain one on every
 * backend, `backtest` the open/close cycle workload.
 */
export const FAMILY_NAMES = ["file", "memory", "redis", "postgres", "mongo", "fenced", "backtest"] as const;

/** The backends the fenced measurement runs on, in order. */
export const BACKEND_NAMES = ["memory", "file", "redis", "postgres", "mongo"] as const;

/** A persist-kit backend, named as its family. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/** A family of contenders, or the backtest workload. */
export type FamilyName = (typeof FAMILY_NAMES)[number];

/** The command line, parsed. */
export interface BenchOptions {
  /** Tiny counts, to check the harness works; the numbers mean nothing. */
  quick: boolean;
  only: FamilyName[];
  /** Timed rounds (repetitions); the report shows medians over them. */
  reps: number;
  /** Where the file family writes its temporary directory. */
  dataDir: string;
  help: boolean;
}

/** How much work each part does. */
export interface Counts {
  keys: number;
  inFlight: number[];
  /** Passes over all keys per block, per family: a block of a fast store needs more to last long enough. */
  passes: Record<BackendName, { sequential: number; inFlight: number }>;
  backtest: { cycles: number; symbols: number };
}

/** The usage text of `pnpm bench`. */
export const USAGE = `Usage: pnpm bench [-- options]
  --quick          tiny counts, to check the harness runs (numbers are not measurements)
  --only LIST      comma-separated subset of: ${FAMILY_NAMES.join(", ")}
  --reps N         timed rounds per family (default 5, quick 3); medians are taken over them
  --data-dir DIR   where the file family writes (default: the OS temp dir)
  --no-build       (run.sh) measure the packages as they are built, without building them first
  --help           this text`;

/** Parses the arguments after `pnpm bench --`; throws an Error with the problem on bad input. */
export function parseOptions(argv: readonly string[]): BenchOptions {
  const options: BenchOptions = {
    quick: false,
    only: [...FAMILY_NAMES],
    reps: 0,
    dataDir: os.tmpdir(),
    help: false,
  };
  const args = argv.filter((arg) => arg !== "--");
  for (let index = 0; index < args.length; index++) {
    const [flag = "", inline] = (args[index] as string).split(/=(.*)/s, 2);
    const value = () => {
      const next = inline ?? args[++index];
      if (next === undefined || next === "") throw new Error(`${flag} needs a value`);
      return next;
    };
    if (flag === "--quick") options.quick = true;
    else if (flag === "--help" || flag === "-h") options.help = true;
    else if (flag === "--only") options.only = parseOnly(value());
    else if (flag === "--reps") options.reps = parseReps(value());
    else if (flag === "--data-dir") options.dataDir = value();
    else throw new Error(`unknown option ${JSON.stringify(flag)}\n${USAGE}`);
  }
  if (options.reps === 0) options.reps = options.quick ? 3 : 5;
  return options;
}

function parseOnly(list: string): FamilyName[] {
  const names = list
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !(FAMILY_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0)
    throw new Error(`--only: unknown ${unknown.join(", ")}; choose from ${FAMILY_NAMES.join(", ")}`);
  if (names.length === 0) throw new Error("--only needs at least one name");
  return FAMILY_NAMES.filter((name) => names.includes(name));
}

function parseReps(text: string): number {
  const reps = Number(text);
  if (!Number.isInteger(reps) || reps < 1 || reps > 1000)
    throw new Error(`--reps must be a whole number from 1, got ${text}`);
  return reps;
}

/**
 * The counts of a run. Full: 300 keys, and passes sized so one block of a store lasts a tenth of a
 * second or more while the whole run stays near 5 minutes on 2 quiet cores (redis with appendfsync
 * always, PostgreSQL and FerretDB pay an fsync per write); quick: a handful of keys and one pass,
 * enough to exercise every path.
 */
export function countsFor(quick: boolean): Counts {
  if (quick) {
    const one = { sequential: 1, inFlight: 1 };
    return {
      keys: 64,
      inFlight: [16, 64],
      passes: { file: one, memory: one, redis: one, postgres: one, mongo: one },
      backtest: { cycles: 2_000, symbols: 100 },
    };
  }
  return {
    keys: 300,
    inFlight: [16, 64],
    passes: {
      file: { sequential: 3, inFlight: 3 },
      memory: { sequential: 50, inFlight: 50 },
      redis: { sequential: 3, inFlight: 6 },
      postgres: { sequential: 2, inFlight: 4 },
      mongo: { sequential: 1, inFlight: 2 },
    },
    backtest: { cycles: 100_000, symbols: 100 },
  };
}
