import { InvalidKeyError, InvalidOptionError, type PersistErrorContext } from "../errors.js";
import { keyProblem } from "../signals/key.js";
import type { RecordCondition, RecordKey } from "./record-store.js";
import { MAX_REVISION } from "./record-store.js";

const NAMESPACE = /^[a-z][a-z0-9-]{0,31}$/;
/** The most key parts a record key may have. */
export const MAX_KEY_PARTS = 8;

/** Why `key` cannot be a record key, or `undefined` when it can. */
export function recordKeyProblem(key: unknown): string | undefined {
  if (typeof key !== "object" || key === null) return `key must be an object, got ${typeof key}`;
  const { namespace, parts } = key as { namespace?: unknown; parts?: unknown };
  const problem = namespaceProblem(namespace);
  if (problem !== undefined) return problem;
  if (!Array.isArray(parts)) return "parts must be an array of names";
  if (parts.length === 0 || parts.length > MAX_KEY_PARTS) {
    return `parts must hold 1 to ${MAX_KEY_PARTS} names, got ${parts.length}`;
  }
  for (const [index, part] of parts.entries()) {
    const partProblem = keyProblem(part);
    if (partProblem !== undefined) return `parts[${index}] ${partProblem}`;
  }
  return undefined;
}

/** Why `namespace` cannot be a record namespace, or `undefined` when it can. */
export function namespaceProblem(namespace: unknown): string | undefined {
  if (typeof namespace === "string" && NAMESPACE.test(namespace)) return undefined;
  return `namespace must match ${NAMESPACE.source}, got ${JSON.stringify(namespace)}`;
}

/** Throws {@link InvalidKeyError} unless `key` is a valid {@link RecordKey}. */
export function assertRecordKey(key: unknown, context: PersistErrorContext): asserts key is RecordKey {
  const problem = recordKeyProblem(key);
  if (problem !== undefined) throw new InvalidKeyError(problem, context);
}

/** Throws {@link InvalidOptionError} unless `condition` is absent or a valid {@link RecordCondition}. */
export function assertRecordCondition(
  condition: unknown,
  context: PersistErrorContext,
): asserts condition is RecordCondition | undefined {
  if (condition === undefined) return;
  const fields = typeof condition === "object" && condition !== null ? Object.keys(condition) : [];
  const [field] = fields;
  if (fields.length === 1 && (field === "revision" || field === "below")) {
    const value = (condition as Record<string, unknown>)[field];
    const min = field === "below" ? 1 : 0;
    if (Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= MAX_REVISION) return;
  }
  throw new InvalidOptionError(
    `condition must be { revision: R } (R >= 0) or { below: R } (R >= 1), R a safe integer; got ${safeJson(condition)}`,
    context,
  );
}

/** A string that identifies a valid record key in maps: parts hold no NUL, so it is unambiguous. */
export function recordKeyId(key: RecordKey): string {
  return `${key.namespace}\u0000${key.parts.join("\u0000")}`;
}

/** The group of a key, whose keys share a revision floor: its namespace and first part. */
export function recordGroupId(key: RecordKey): string {
  return `${key.namespace}\u0000${key.parts[0]}`;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
