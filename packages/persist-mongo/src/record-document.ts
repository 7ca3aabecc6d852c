import { types } from "node:util";
import { type RecordKey, recordKeyProblem } from "@persist-kit/core";

/** The stored layout's version; a later release migrates documents of older versions on read. */
export const DOCUMENT_FORMAT = 1;

// Base revisions are safe integers (at most 16 digits): zero-padded, string order is number order.
const REVISION_DIGITS = 16;

/**
 * One change of one record: the successor of the key's revision `base`. Every writer that read
 * the key at the same revision inserts the same `_id`, so the unique `_id` lets exactly one of
 * them win, on MongoDB and on servers whose updates are not atomic (FerretDB 1.x). The key's
 * current state is its document with the highest `_id`.
 */
export interface RecordDocument {
  /** {@link recordDocumentId}: `<keyPrefix>#<base zero-padded to 16 digits>`. */
  _id: string;
  /** {@link DOCUMENT_FORMAT}. */
  v: number;
  namespace: string;
  parts: string[];
  /** The revision this change was decided on (0 for a key never written). */
  base: number;
  /** The revision this change stored. */
  revision: number;
  /** Random id of this change, so its successors can name the exact document they descend from. */
  change: string;
  /**
   * The changes this one descends from, nearest (its base) first, at most {@link MAX_ANCESTORS};
   * empty for the first change of a key. Tells a writer whether its document was built upon.
   */
  ancestors: Ancestor[];
  /** The value as JSON text, stored verbatim; absent on a deletion. */
  value?: string;
  /** Present (true) when this change deleted the key. */
  deleted?: true;
  /** When the value stops being readable, by the server's clock; only with a TTL. */
  expiresAt?: Date;
}

/** One change a document descends from. */
export interface Ancestor {
  change: string;
  revision: number;
}

/** How many ancestors a document names. */
export const MAX_ANCESTORS = 8;

/**
 * The `_id` prefix of every document of a key: the JSON array `[namespace, ...parts]`. JSON quotes
 * and escapes every name, so keys never collide, and no JSON array is a prefix of another, so
 * `<prefix>#` starts the documents of this key alone. A plain string: compared as data, never
 * read as a query operator.
 * @example keyDocumentPrefix({ namespace: "signal", parts: ["momentum", "BTC/USDT"] }) // '["signal","momentum","BTC/USDT"]'
 */
export function keyDocumentPrefix(key: RecordKey): string {
  return JSON.stringify([key.namespace, ...key.parts]);
}

/**
 * The `_id` of the change of `key` decided on revision `base`.
 * @example recordDocumentId({ namespace: "signal", parts: ["momentum", "BTC/USDT"] }, 0) // '["signal","momentum","BTC/USDT"]#0000000000000000'
 */
export function recordDocumentId(key: RecordKey, base: number): string {
  return `${keyDocumentPrefix(key)}#${String(base).padStart(REVISION_DIGITS, "0")}`;
}

/** The `_id` range holding every document of `key`, and only those (`$` follows `#`). */
export function keyDocumentRange(key: RecordKey): { $gte: string; $lt: string } {
  const prefix = keyDocumentPrefix(key);
  return { $gte: `${prefix}#`, $lt: `${prefix}$` };
}

/**
 * The `_id` ranges of every key of `namespace` whose parts start with `prefix`: the key equal to
 * the prefix, and the longer ones (`[..., "a",` up to `[..., "a"-`; `-` follows `,`).
 */
export function listDocumentRanges(
  namespace: string,
  prefix: readonly string[],
): { _id: { $gte: string; $lt: string } }[] {
  const opening = JSON.stringify([namespace, ...prefix]).slice(0, -1);
  const longer = { _id: { $gte: `${opening},`, $lt: `${opening}-` } };
  return prefix.length === 0 ? [longer] : [{ _id: keyDocumentRange({ namespace, parts: prefix }) }, longer];
}

/**
 * The key and base revision an `_id` names, or `undefined` when it is not an `_id` of this layout
 * spelled exactly as {@link recordDocumentId} spells it. The key is not checked here.
 * @example parseRecordDocumentId('["signal","momentum","BTC/USDT"]#0000000000000004') // { key: { namespace: "signal", parts: ["momentum", "BTC/USDT"] }, base: 4 }
 */
export function parseRecordDocumentId(id: unknown): { key: RecordKey; base: number } | undefined {
  if (typeof id !== "string") return undefined;
  // Names may hold `#`, but the JSON array ends in `]`: the last `#` starts the revision.
  const separator = id.lastIndexOf("#");
  if (separator < 0) return undefined;
  let names: unknown;
  try {
    names = JSON.parse(id.slice(0, separator));
  } catch {
    return undefined;
  }
  if (!Array.isArray(names) || names.length < 1 || !names.every((name) => typeof name === "string")) return undefined;
  const [namespace, ...parts] = names as string[];
  const key: RecordKey = { namespace: namespace as string, parts };
  const base = Number(id.slice(separator + 1));
  // Only the one spelling: the same names spaced or escaped otherwise are another `_id`.
  return isRevision(base) && recordDocumentId(key, base) === id ? { key, base } : undefined;
}

/**
 * Why `document` is not a v1 record document of a valid key stored under its own `_id`, or
 * `undefined` when it is. The key is taken from the `_id` and checked like every key written
 * (core's `recordKeyProblem`); the `namespace`, `parts` and `base` fields must say the same.
 */
export function recordDocumentProblem(document: Record<string, unknown>): string | undefined {
  const { v, namespace, parts, base, revision, change, value, deleted } = document;
  if (v !== DOCUMENT_FORMAT) return `format ${JSON.stringify(v)} is not ${DOCUMENT_FORMAT}`;
  const named = parseRecordDocumentId(document._id);
  if (named === undefined) return "_id is not a key prefix # base revision";
  const keyProblem = recordKeyProblem(named.key);
  if (keyProblem !== undefined) return `_id names no valid key: ${keyProblem}`;
  if (namespace !== named.key.namespace || !sameNames(parts, named.key.parts)) {
    return "namespace and parts do not match its _id";
  }
  if (!isRevision(base) || !isRevision(revision) || revision <= base) return "base and revision are not revisions";
  if (base !== named.base) return "base does not match its _id";
  if (typeof change !== "string") return "change is not an id";
  if (!Array.isArray(document.ancestors) || !document.ancestors.every(isAncestor)) return "ancestors are not changes";
  if (deleted === true ? value !== undefined : typeof value !== "string") return "holds neither a value nor a deletion";
  if (document.expiresAt !== undefined && !types.isDate(document.expiresAt)) return "expiresAt is not a date";
  return undefined;
}

function sameNames(value: unknown, names: readonly string[]): boolean {
  return Array.isArray(value) && value.length === names.length && value.every((name, index) => name === names[index]);
}

function isAncestor(value: unknown): boolean {
  const { change, revision } = (value ?? {}) as { change?: unknown; revision?: unknown };
  return typeof change === "string" && isRevision(revision);
}

function isRevision(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
