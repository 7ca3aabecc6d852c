/**
 * The value of a record key, layout v1: `{"v":1,"revision":12,"value":<the JSON text verbatim>}`.
 * The header comes first and has a fixed shape, so the server-side scripts read the revision
 * with one pattern match and JavaScript slices the value out without parsing the row twice. The
 * scripts in scripts.ts build the same text, and take a revision (of a record or a floor) under
 * the same rule as this module: 1 to 16 digits, at most 2^53 - 1 ({@link MAX_STORED_REVISION}).
 */

/** The format version of records written by this release. */
export const STORED_RECORD_VERSION = 1;

/** The highest revision a record or floor key may hold: the highest one JavaScript keeps exact. */
export const MAX_STORED_REVISION = Number.MAX_SAFE_INTEGER;

// 16 digits hold every revision up to MAX_STORED_REVISION; the value is checked after.
const HEADER = /^\{"v":1,"revision":(\d{1,16}),"value":/;
const FLOOR = /^\d{1,16}$/;

/** One record as stored: its revision and the JSON text of its value. */
export interface StoredRecord {
  readonly revision: number;
  readonly json: string;
}

/**
 * The stored text of a record.
 * @example storedRecordText(3, '{"id":"a"}') // '{"v":1,"revision":3,"value":{"id":"a"}}'
 */
export function storedRecordText(revision: number, json: string): string {
  return `{"v":${STORED_RECORD_VERSION},"revision":${revision},"value":${json}}`;
}

/**
 * The revision and value of stored text, or `undefined` when it is not a whole v1 record: the
 * header, one JSON text, and the closing `}` that ends the text.
 */
export function parseStoredRecord(text: string): StoredRecord | undefined {
  const header = HEADER.exec(text);
  if (header === null || !text.endsWith("}")) return undefined;
  const revision = Number(header[1]);
  if (!Number.isSafeInteger(revision)) return undefined;
  const json = text.slice(header[0].length, -1);
  // The value must be one JSON text: `{"v":1,"revision":3,"value":{}` ends with a brace of the
  // value, not of the envelope, and slices to "{".
  if (!isJsonText(json)) return undefined;
  return { revision, json };
}

/** The revision a floor key holds (`null`: no floor yet, 0), or `undefined` when it is not a whole number. */
export function parseFloor(text: string | null): number | undefined {
  if (text === null) return 0;
  if (!FLOOR.test(text)) return undefined;
  const floor = Number(text);
  return Number.isSafeInteger(floor) ? floor : undefined;
}

function isJsonText(json: string): boolean {
  try {
    JSON.parse(json);
    return true;
  } catch {
    return false;
  }
}
