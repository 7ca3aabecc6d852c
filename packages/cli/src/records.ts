import { createHash } from "node:crypto";
import {
  assertJsonText,
  assertRecordKey,
  LEASE_NAMESPACE,
  MAX_REVISION,
  parseSignalRow,
  type RecordKey,
  type RecordStore,
  recordKeyId,
  SIGNAL_NAMESPACE,
} from "@persist-kit/core";
import { UsageError } from "./io.js";

/** One line of an export: a record as stored, with its revision and the SHA-256 of its text. */
export interface ExportedRecord {
  readonly namespace: string;
  readonly parts: readonly string[];
  readonly revision: number;
  /** The stored JSON text, byte for byte. */
  readonly json: string;
  /** Hex SHA-256 of `json` as UTF-8. */
  readonly sha256: string;
}

export function checksum(json: string): string {
  return createHash("sha256").update(json, "utf8").digest("hex");
}

/** Reads one record for an export; `undefined` when it was deleted since it was listed. */
export async function exportRecord(records: RecordStore, key: RecordKey): Promise<ExportedRecord | undefined> {
  const read = await records.read(key);
  if (!read.found) return undefined;
  return {
    namespace: key.namespace,
    parts: key.parts,
    revision: read.revision,
    json: read.json,
    sha256: checksum(read.json),
  };
}

export function exportLine(record: ExportedRecord): string {
  const { namespace, parts, revision, json, sha256 } = record;
  return JSON.stringify({ namespace, parts, revision, json, sha256 });
}

/**
 * The last line of every export: how many records came before it. An export cut short (a lost
 * connection, a full disk, `export | import` with the export failing) has no such line, and
 * `import` refuses it, so a partial copy never passes for a whole one.
 */
export function endLine(records: number): string {
  return JSON.stringify({ end: true, records });
}

/** Leases belong to running processes and expire by themselves: never exported, never imported. */
export function assertCopiedNamespace(namespace: string): void {
  if (namespace === LEASE_NAMESPACE) {
    throw new UsageError(
      "leases belong to running processes and expire by themselves; they are never exported or imported",
    );
  }
}

// The highest revision an import writes: the adapter fences a key it takes at revision + 2^30,
// and that must stay within MAX_REVISION for the key to be usable after the import.
const MAX_IMPORTED_REVISION = MAX_REVISION - 2 ** 32;

/**
 * Parses and checks a whole export before anything is written: every line a record with a valid
 * key, a revision, JSON text whose checksum matches (a signal's text a valid signal), no key twice.
 * Throws {@link UsageError} naming the first bad line.
 */
export function parseExport(text: string, source: string): ExportedRecord[] {
  const records: ExportedRecord[] = [];
  const seen = new Map<string, number>();
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const end = lines.pop();
  let ending: unknown;
  try {
    ending = end === undefined ? undefined : JSON.parse(end);
  } catch {}
  const { end: isEnd, records: count } = (typeof ending === "object" && ending !== null ? ending : {}) as {
    end?: unknown;
    records?: unknown;
  };
  if (isEnd !== true || count !== lines.length) {
    throw new UsageError(
      `${source} does not end with the line {"end":true,"records":${lines.length}}: the export is incomplete (it was cut short) or not an export; nothing was written`,
    );
  }
  for (const [index, content] of lines.entries()) {
    const where = `${source} line ${index + 1}`;
    const record = parseLine(content, where);
    const id = recordKeyId(record);
    const earlier = seen.get(id);
    if (earlier !== undefined) throw new UsageError(`${where}: the same key as line ${earlier}; nothing was written`);
    seen.set(id, index + 1);
    records.push(record);
  }
  return records;
}

function parseLine(content: string, where: string): ExportedRecord {
  const refuse = (problem: string) => new UsageError(`${where}: ${problem}; nothing was written`);
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch {
    throw refuse("not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw refuse("not a JSON object");
  const { namespace, parts, revision, json, sha256 } = value as Record<string, unknown>;
  const key = { namespace, parts };
  try {
    assertRecordKey(key, { backend: "cli", operation: "write" });
  } catch (error) {
    throw refuse((error as Error).message);
  }
  if (key.namespace === LEASE_NAMESPACE)
    throw refuse("a lease: leases belong to running processes and are never imported");
  if (key.namespace === SIGNAL_NAMESPACE && (key.parts as string[]).length !== 2) {
    throw refuse(`a signal's key has two parts, strategy and symbol, not ${(key.parts as string[]).length}`);
  }
  if (typeof revision !== "number" || !Number.isInteger(revision) || revision < 1 || revision > MAX_IMPORTED_REVISION) {
    throw refuse(`revision must be a whole number from 1 to 2^52 - 2^32, got ${JSON.stringify(revision)}`);
  }
  if (typeof json !== "string") throw refuse("json must be the stored text, a string");
  try {
    assertJsonText(json, { backend: "cli", operation: "write" });
  } catch (error) {
    throw refuse((error as Error).message);
  }
  if (typeof sha256 !== "string" || sha256 !== checksum(json)) throw refuse("the checksum does not match the text");
  try {
    JSON.parse(json);
  } catch {
    throw refuse("the stored text is not JSON");
  }
  if (namespace === SIGNAL_NAMESPACE) {
    try {
      parseSignalRow(json, { backend: "cli", operation: "write" });
    } catch (error) {
      throw refuse((error as Error).message);
    }
  }
  return { namespace: key.namespace as string, parts: [...(key.parts as string[])], revision, json, sha256 };
}

/** What importing one record did (or, in a dry run, would do). */
export type ImportOutcome =
  /** Written at the exported revision. */
  | "written"
  /** Already there: the same text at that revision or a later one. */
  | "unchanged"
  /** The target holds a newer revision with other content (or deleted the key later): left as it is. */
  | "newer-in-target"
  /** The newer target record was replaced (`overwrite`). */
  | "overwritten";

/**
 * Imports one record so that a repeated import changes nothing: it is written with the condition
 * `{ below: revision }`, so the target takes the exported revision and a later run finds it
 * unchanged; a target that is further on is left alone unless `overwrite`, and then replaced
 * only if it did not change since it was read.
 */
export async function importRecord(
  records: RecordStore,
  record: ExportedRecord,
  options: { overwrite: boolean; dryRun: boolean },
): Promise<ImportOutcome> {
  const key = { namespace: record.namespace, parts: record.parts };
  // Written first and read only when that was refused: a fresh target costs one round trip.
  if (!options.dryRun) {
    const change = await records.write(key, record.json, { condition: { below: record.revision } });
    if (change.applied) return "written";
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await records.read(key);
    if (current.found && current.json === record.json && current.revision >= record.revision) return "unchanged";
    if (current.revision < record.revision) {
      if (options.dryRun) return "written";
      const change = await records.write(key, record.json, { condition: { below: record.revision } });
      if (change.applied) return "written";
      continue;
    }
    if (!options.overwrite) return "newer-in-target";
    if (options.dryRun) return "overwritten";
    const change = await records.write(key, record.json, { condition: { revision: current.revision } });
    if (change.applied) return "overwritten";
  }
  throw new Error(
    `the target key ${JSON.stringify([record.namespace, ...record.parts])} kept changing while it was imported`,
  );
}
