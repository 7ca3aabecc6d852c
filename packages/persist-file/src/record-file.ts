// What a record file and a floor file hold: format 1, the first layout of this backend. A later
// release that changes the layout reads `format` first and migrates on read.

/** The format version every file written by this release carries. */
export const RECORD_FORMAT = 1;

/** The contents of a record file: a value with its revision, or a tombstone keeping a deleted key's revision. */
export type StoredRecord =
  | { readonly kind: "value"; readonly revision: number; readonly json: string; readonly expiresAt: number | undefined }
  | { readonly kind: "tombstone"; readonly revision: number };

/** A stored file that is not what this release writes; the file is left in place. */
export class StoredFormatError extends Error {
  /** Recognised across the I/O thread boundary, where only `code` and `message` survive. */
  static readonly code = "PERSIST_FILE_STORED_FORMAT";
  readonly code = StoredFormatError.code;
}

const RECORD_FIELDS = new Set(["format", "revision", "expiresAt", "value"]);

/**
 * `{"format":1,"revision":R[,"expiresAt":ms],"value":V}` with `json` as V exactly as given: the
 * value is last, so a reader takes it back as the text between the header and the final `}`.
 */
export function encodeValue(revision: number, json: string, expiresAt: number | undefined): string {
  return `${valueHeader(revision, expiresAt)}${json}}`;
}

/** `{"format":1,"revision":R}`: the key is deleted, and its revision is R. */
export function encodeTombstone(revision: number): string {
  return `{"format":${RECORD_FORMAT},"revision":${revision}}`;
}

/** `{"format":1,"floor":R}`: every key of the group that has no record file has revision R. */
export function encodeFloor(floor: number): string {
  return `{"format":${RECORD_FORMAT},"floor":${floor}}`;
}

/** Reads a record file's text; throws {@link StoredFormatError} when it is not a format 1 record. */
export function decodeRecord(text: string): StoredRecord {
  const stored = parseObject(text, "a record");
  for (const field of Object.keys(stored)) {
    if (!RECORD_FIELDS.has(field))
      throw new StoredFormatError(`a record has an unknown field ${JSON.stringify(field)}`);
  }
  const revision = wholeNumberField(stored, "revision");
  if (!("value" in stored)) {
    if ("expiresAt" in stored) throw new StoredFormatError("a tombstone has an expiresAt");
    return { kind: "tombstone", revision };
  }
  const expiresAt = "expiresAt" in stored ? wholeNumberField(stored, "expiresAt") : undefined;
  const header = valueHeader(revision, expiresAt);
  // Written by this backend: the value's own text. Edited by hand: the value as JSON.
  const json =
    text.startsWith(header) && text.endsWith("}")
      ? text.slice(header.length, -1)
      : JSON.stringify((stored as { value: unknown }).value);
  return { kind: "value", revision, json, expiresAt };
}

/** Reads a floor file's text; throws {@link StoredFormatError} when it is not a format 1 floor. */
export function decodeFloor(text: string): number {
  const stored = parseObject(text, "a revision floor");
  if (Object.keys(stored).length !== 2) throw new StoredFormatError("a revision floor holds format and floor only");
  return wholeNumberField(stored, "floor");
}

/** True for a value that has not expired at `now` (ms since the epoch). */
export function isLive(record: StoredRecord, now: number): record is Extract<StoredRecord, { kind: "value" }> {
  return record.kind === "value" && (record.expiresAt === undefined || record.expiresAt > now);
}

function valueHeader(revision: number, expiresAt: number | undefined): string {
  const expiry = expiresAt === undefined ? "" : `,"expiresAt":${expiresAt}`;
  return `{"format":${RECORD_FORMAT},"revision":${revision}${expiry},"value":`;
}

function parseObject(text: string, what: string): Record<string, unknown> {
  let stored: unknown;
  try {
    stored = JSON.parse(text);
  } catch (error) {
    throw new StoredFormatError(`${what} is not JSON (${(error as Error).message})`);
  }
  if (typeof stored !== "object" || stored === null || Array.isArray(stored)) {
    throw new StoredFormatError(`${what} is not a JSON object`);
  }
  const { format } = stored as { format?: unknown };
  if (format !== RECORD_FORMAT) {
    throw new StoredFormatError(
      `${what} has format ${JSON.stringify(format)}; this release reads format ${RECORD_FORMAT}`,
    );
  }
  return stored as Record<string, unknown>;
}

function wholeNumberField(stored: Record<string, unknown>, field: string): number {
  const value = stored[field];
  if (Number.isSafeInteger(value) && (value as number) >= 0) return value as number;
  throw new StoredFormatError(`${field} is not a whole number: ${JSON.stringify(value)}`);
}
