/**
 * The value of a record key, layout v1: `{"v":1,"revision":12,"value":<the JSON text verbatim>}`.
 * The header comes first and has a fixed shape, so the server-side scripts read the revision
 * with one pattern match and JavaScript slices the value out without parsing the row twice. The
 * scripts in scripts.ts build the same text.
 */

/** The format version of records written by this release. */
export const STORED_RECORD_VERSION = 1;

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

/** The revision and value of stored text, or `undefined` when it is not a v1 record. */
export function parseStoredRecord(text: string): StoredRecord | undefined {
  const header = HEADER.exec(text);
  if (header === null || !text.endsWith("}")) return undefined;
  const revision = Number(header[1]);
  if (!Number.isSafeInteger(revision)) return undefined;
  return { revision, json: text.slice(header[0].length, -1) };
}

/** The revision a floor key holds (`null`: no floor yet, 0), or `undefined` when it is not a whole number. */
export function parseFloor(text: string | null): number | undefined {
  if (text === null) return 0;
  if (!FLOOR.test(text)) return undefined;
  const floor = Number(text);
  return Number.isSafeInteger(floor) ? floor : undefined;
}
