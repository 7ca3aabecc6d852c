// The `persist-kit` program as a function, for scripts and tests.
export { HELP, runCli } from "./cli.js";
export type { CliIo } from "./io.js";
export { EXIT, UsageError } from "./io.js";
export { checksum, type ExportedRecord, type ImportOutcome, importRecord, parseExport } from "./records.js";
