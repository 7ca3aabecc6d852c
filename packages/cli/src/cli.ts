import { parseArgs } from "node:util";
import { errorMessage, listenWarning, redactCredentials } from "@persist-kit/core";
import { DOCTOR_HELP, doctor } from "./commands/doctor.js";
import { EXPORT_HELP, exportStore } from "./commands/export.js";
import { GET_HELP, get } from "./commands/get.js";
import { IMPORT_HELP, importStore } from "./commands/import.js";
import { IMPORT_BACKTEST_KIT_HELP, importBacktestKit } from "./commands/import-backtest-kit.js";
import { LS_HELP, ls } from "./commands/ls.js";
import { MIGRATE_HELP, migrate } from "./commands/migrate.js";
import { RM_HELP, rm } from "./commands/rm.js";
import { type CliIo, EXIT, line, UsageError } from "./io.js";

export const HELP = `Usage: persist-kit <command> [options]

See, move and check what a trading bot has stored, on any URL createPersist accepts
(file:./data, redis://, rediss://, postgres://, mongodb://). Where a command takes [url], leave
it out to use PERSIST_URL, or pass env:NAME to read it from the environment variable NAME, so a
password stays out of the process list and the shell history.

Commands:
  ls [url]                         the open signals, with their owners
  get [url] <strategy> <symbol>    one signal, as stored
  rm [url] <strategy> <symbol>     delete one signal (fenced; asks first)
  export [url]                     every record as JSON Lines
  import [url] <FILE|->            records from an export
  migrate <from> <to>              copy every record, verified bit for bit
  doctor [url]                     can this store lose acknowledged writes?
  import-backtest-kit <dir> [url]  a backtest-kit ./dump folder into a store

Every command takes --help, and all but export (JSON Lines already) take --json for machine output.
Exit status: 0 all is well; 1 a finding (doctor), a difference (import, migrate, import-backtest-kit),
a key with nothing stored (get, rm) or a refusal (migrate while processes own keys, rm of an
owned key or answered no); 2 a usage or connection error.`;

type Flags = Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }>;

interface Command {
  help: string;
  flags: Flags;
  /** How many positionals, at least and at most: the optional url comes first. */
  positionals: readonly [number, number];
  run(values: Record<string, unknown>, positionals: string[], io: CliIo): Promise<number>;
}

const JSON_FLAG = { json: { type: "boolean" } } as const;

// Optional url first: with the most positionals it is the first, with one fewer it is left out.
// A first argument that reads as a URL while one is missing is a forgotten argument, never a
// strategy named "file:./data" on the store of PERSIST_URL.
function withOptionalUrl(positionals: string[], most: number): [string | undefined, ...string[]] {
  if (positionals.length === most) return positionals as [string, ...string[]];
  if (URL_LIKE.test(positionals[0] ?? "")) {
    throw new UsageError(`${positionals[0]?.split(":")[0]}: reads as a URL, and then ${most} arguments are needed`);
  }
  return [undefined, ...positionals];
}

const URL_LIKE = /^(file|memory|redis|rediss|postgres|postgresql|mongodb|mongodb\+srv|env):/i;

const COMMANDS: Record<string, Command> = {
  ls: {
    help: LS_HELP,
    flags: { ...JSON_FLAG, strategy: { type: "string" }, namespace: { type: "string" } },
    positionals: [0, 1],
    run: (values, positionals, io) =>
      ls(
        {
          url: positionals[0],
          strategy: values.strategy as string | undefined,
          namespace: values.namespace as string | undefined,
          json: values.json === true,
        },
        io,
      ),
  },
  get: {
    help: GET_HELP,
    flags: JSON_FLAG,
    positionals: [2, 3],
    run: (values, positionals, io) => {
      const [url, strategy = "", symbol = ""] = withOptionalUrl(positionals, 3);
      return get({ url, strategy, symbol, json: values.json === true }, io);
    },
  },
  rm: {
    help: RM_HELP,
    flags: { ...JSON_FLAG, yes: { type: "boolean", short: "y" }, force: { type: "boolean" } },
    positionals: [2, 3],
    run: (values, positionals, io) => {
      const [url, strategy = "", symbol = ""] = withOptionalUrl(positionals, 3);
      return rm(
        { url, strategy, symbol, json: values.json === true, yes: values.yes === true, force: values.force === true },
        io,
      );
    },
  },
  export: {
    help: EXPORT_HELP,
    flags: { out: { type: "string", short: "o" }, namespace: { type: "string", multiple: true } },
    positionals: [0, 1],
    run: (values, positionals, io) =>
      exportStore(
        {
          url: positionals[0],
          out: values.out as string | undefined,
          namespaces: (values.namespace as string[] | undefined) ?? [],
        },
        io,
      ),
  },
  import: {
    help: IMPORT_HELP,
    flags: { ...JSON_FLAG, overwrite: { type: "boolean" }, "dry-run": { type: "boolean" } },
    positionals: [1, 2],
    run: (values, positionals, io) => {
      const [url, file = "-"] = withOptionalUrl(positionals, 2);
      return importStore(
        {
          url,
          file,
          overwrite: values.overwrite === true,
          dryRun: values["dry-run"] === true,
          json: values.json === true,
        },
        io,
      );
    },
  },
  migrate: {
    help: MIGRATE_HELP,
    flags: {
      ...JSON_FLAG,
      "dry-run": { type: "boolean" },
      overwrite: { type: "boolean" },
      "ignore-owners": { type: "boolean" },
      concurrency: { type: "string" },
    },
    positionals: [2, 2],
    run: (values, [from = "", to = ""], io) =>
      migrate(
        {
          from,
          to,
          dryRun: values["dry-run"] === true,
          overwrite: values.overwrite === true,
          ignoreOwners: values["ignore-owners"] === true,
          concurrency: concurrency(values.concurrency as string | undefined),
          json: values.json === true,
        },
        io,
      ),
  },
  doctor: {
    help: DOCTOR_HELP,
    flags: { ...JSON_FLAG, strict: { type: "boolean" } },
    positionals: [0, 1],
    run: (values, positionals, io) =>
      doctor({ url: positionals[0], strict: values.strict === true, json: values.json === true }, io),
  },
  "import-backtest-kit": {
    help: IMPORT_BACKTEST_KIT_HELP,
    flags: JSON_FLAG,
    positionals: [1, 2],
    run: (values, [dir = "", url], io) => importBacktestKit({ dir, url, json: values.json === true }, io),
  },
};

function concurrency(text: string | undefined): number {
  if (text === undefined) return 16;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 256) {
    throw new UsageError(`--concurrency must be a whole number from 1 to 256, got ${JSON.stringify(text)}`);
  }
  return value;
}

/**
 * Runs one `persist-kit` command line (the arguments after the program name) and resolves with
 * its exit status; errors are printed, never thrown.
 * @example process.exitCode = await runCli(process.argv.slice(2));
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    line(name === undefined ? io.stderr : io.stdout, HELP);
    return name === undefined ? EXIT.error : EXIT.ok;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    line(io.stderr, `persist-kit: unknown command ${JSON.stringify(name)}; see persist-kit --help`);
    return EXIT.error;
  }
  // A backend's warnings (a setting that can lose writes) go to standard error once each, as
  // lines of this program, not as Node's process warnings.
  const warned = new Set<string>();
  const stopWarnings = listenWarning((warning) => {
    const text = `warning: [${warning.backend}] ${warning.message}`;
    if (!warned.has(text)) line(io.stderr, text);
    warned.add(text);
  });
  try {
    const { values, positionals } = parseArgs({
      args: [...rest],
      options: { ...command.flags, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help === true) {
      line(io.stdout, command.help);
      return EXIT.ok;
    }
    const [least, most] = command.positionals;
    if (positionals.length < least || positionals.length > most) {
      throw new UsageError(
        `${name} takes ${least === most ? least : `${least} to ${most}`} arguments, got ${positionals.length}`,
      );
    }
    return await command.run(values, positionals, io);
  } catch (error) {
    const usage = error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    line(io.stderr, `persist-kit ${name}: ${usage ? errorMessage(error) : describeError(error)}`);
    if (usage) line(io.stderr, `see persist-kit ${name} --help`);
    return EXIT.error;
  } finally {
    stopWarnings();
  }
}

// A backend's errors say what failed and are already free of credentials; redacted once more all
// the same, as is anything else (a bug's message could quote a URL).
function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return redactCredentials(text);
}

function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    interactive: process.stderr.isTTY === true,
  };
}
