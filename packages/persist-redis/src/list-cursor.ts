import { InvalidOptionError, type PersistErrorContext } from "@persist-kit/core";

/**
 * Where a listing goes on: the data node (its index among the masters, in address order), the
 * SCAN cursor to resume on it, whether its SCAN is finished, and the keys one SCAN call returned
 * that did not fit in the last page (SCAN cannot resume in the middle of a reply).
 */
export interface ListPosition {
  readonly node: number;
  readonly scan: string;
  readonly done: boolean;
  readonly pending: readonly string[];
}

const START: ListPosition = { node: 0, scan: "0", done: false, pending: [] };

/** The cursor string of a position: base64url of `[node, scan, done, pending]`. */
export function encodeListCursor(position: ListPosition): string {
  const { node, scan, done, pending } = position;
  return Buffer.from(JSON.stringify([node, scan, done ? 1 : 0, pending])).toString("base64url");
}

/** The position of a cursor from {@link encodeListCursor}, the start for none; anything else throws InvalidOptionError. */
export function decodeListCursor(
  cursor: string | undefined,
  nodes: number,
  context: PersistErrorContext,
): ListPosition {
  if (cursor === undefined) return START;
  const position = parsePosition(cursor);
  if (position === undefined || position.node >= nodes) {
    throw new InvalidOptionError("cursor must be the cursor of an earlier page (of this deployment)", context);
  }
  return position;
}

function parsePosition(cursor: string): ListPosition | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 4) return undefined;
  const [node, scan, done, pending] = value as unknown[];
  if (!Number.isSafeInteger(node) || (node as number) < 0) return undefined;
  if (typeof scan !== "string" || !/^\d{1,20}$/.test(scan) || (done !== 0 && done !== 1)) return undefined;
  if (!Array.isArray(pending) || !pending.every((key) => typeof key === "string")) return undefined;
  return { node: node as number, scan, done: done === 1, pending: pending as string[] };
}
