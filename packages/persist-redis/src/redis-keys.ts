import {
  InvalidOptionError,
  type RecordKey,
  recordKeyProblem,
  type SignalKey,
  signalRecordKey,
} from "@persist-kit/core";

/** The key prefix used when none is given. */
export const DEFAULT_PREFIX = "persist-kit:";

const ESCAPE = "%";
// ":" separates the parts of a key, "{" and "}" delimit the cluster hash tag, "* ? [ ] \" are
// syntax in SCAN MATCH patterns, and "%" is the escape itself. No name may keep any of them.
const SPECIAL_CHARACTERS = ":{}*?[]\\%";
const SPECIAL_CHARACTER = /[:{}*?[\]\\%]/g;
const ESCAPE_SEQUENCE = /%([0-9A-F]{2})?/g;
const CODE_OF = new Map([...SPECIAL_CHARACTERS].map((character) => [character, hexCode(character)]));
const CHARACTER_OF = new Map([...CODE_OF].map(([character, code]) => [code, character]));
const GLOB_CHARACTER = /[*?[\]\\]/g;
// What `recordRedisKey` puts after `{prefix}{namespace}:`: the first part in braces, then the others.
const RECORD_KEY_BODY = /^\{([^:{}]+)\}((?::[^:{}]+)*)$/;
// Floor keys live under this word; a record key never has a namespace right after it.
const FLOOR_WORD = "floor";

function hexCode(character: string): string {
  return (character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(2, "0");
}

/**
 * Escapes one key part (a strategy name, a symbol) for a Redis key name: `:`, `{`, `}`, `*`, `?`,
 * `[`, `]`, `\` and `%` become `%XX` (their hex code), everything else is kept. Reversible with
 * {@link decodeRedisKeyName}.
 * @example encodeRedisKeyName("ETH/USDT:USDT") // "ETH/USDT%3AUSDT"
 */
export function encodeRedisKeyName(name: string): string {
  return name.replace(SPECIAL_CHARACTER, (character) => `${ESCAPE}${CODE_OF.get(character)}`);
}

/**
 * Reverses {@link encodeRedisKeyName}. Text it never produces (a bare special character, an
 * unknown or lowercase escape) gives `undefined`, so every name has exactly one encoding.
 * @example decodeRedisKeyName("ETH/USDT%3AUSDT") // "ETH/USDT:USDT"
 */
export function decodeRedisKeyName(encoded: string): string | undefined {
  let valid = !/[:{}*?[\]\\]/.test(encoded);
  const decoded = encoded.replace(ESCAPE_SEQUENCE, (sequence, code: string | undefined) => {
    const character = code === undefined ? undefined : CHARACTER_OF.get(code);
    if (character === undefined) valid = false;
    return character ?? sequence;
  });
  return valid ? decoded : undefined;
}

/**
 * The Redis key of one record: `{prefix}{namespace}:{part0}:{part1}...`, every part escaped by
 * {@link encodeRedisKeyName} and the first one in braces. The first part is the cluster hash tag,
 * so a group (namespace and first part) lives in one hash slot, with its floor key.
 * @example recordRedisKey("bot:", { namespace: "risk", parts: ["momentum", "BTC/USDT"] }) // "bot:risk:{momentum}:BTC/USDT"
 */
export function recordRedisKey(prefix: string, key: RecordKey): string {
  const [first, ...rest] = key.parts.map(encodeRedisKeyName);
  return `${prefix}${key.namespace}:{${first}}${rest.map((part) => `:${part}`).join("")}`;
}

/**
 * The key holding the revision floor of a record's group: `{prefix}floor:{namespace}:{part0}`,
 * the first part in braces, so it shares the hash slot of every key of the group. A delete raises
 * it in the same script call; an absent key reports it as its revision.
 * @example floorRedisKey("bot:", { namespace: "signal", parts: ["momentum", "BTC/USDT"] }) // "bot:floor:signal:{momentum}"
 */
export function floorRedisKey(prefix: string, key: RecordKey): string {
  return `${prefix}${FLOOR_WORD}:${key.namespace}:{${encodeRedisKeyName(key.parts[0] ?? "")}}`;
}

/**
 * The Redis key of one signal: `{prefix}signal:{strategy}:{symbol}`, the record key of namespace
 * `"signal"`. The escaped strategy is the cluster hash tag, so all keys of one strategy live in one
 * hash slot (and one `writeMany` can span them).
 * @example signalRedisKey("bot:", { strategyName: "momentum", symbol: "BTC/USDT" }) // "bot:signal:{momentum}:BTC/USDT"
 */
export function signalRedisKey(prefix: string, key: SignalKey): string {
  return recordRedisKey(prefix, signalRecordKey(key.symbol, key.strategyName));
}

/**
 * The SCAN MATCH pattern for the record keys of `namespace` under `prefix`, narrowed to the
 * first key part of `partsPrefix` when it has one. Glob characters of the prefix are escaped and
 * escaped names hold none, so the pattern matches no floor key and no other prefix's keys; the
 * keys it matches are still parsed, and filtered on the whole `partsPrefix`.
 * @example recordKeyPattern("bot:", "signal", ["a*"]) // "bot:signal:{a%2A}*"
 */
export function recordKeyPattern(prefix: string, namespace: string, partsPrefix: readonly string[] = []): string {
  const [first] = partsPrefix;
  const tag = first === undefined ? "*" : encodeRedisKeyName(first);
  return `${prefix.replace(GLOB_CHARACTER, "\\$&")}${namespace}:{${tag}}*`;
}

/**
 * The key parts of a key made by {@link recordRedisKey} for `namespace`, or `undefined` for any
 * other key (another application's key under the same prefix, a floor key).
 * @example parseRecordRedisKey("bot:", "risk", "bot:risk:{momentum}:BTC/USDT") // ["momentum", "BTC/USDT"]
 */
export function parseRecordRedisKey(prefix: string, namespace: string, redisKey: string): string[] | undefined {
  const head = `${prefix}${namespace}:`;
  if (!redisKey.startsWith(head)) return undefined;
  const match = RECORD_KEY_BODY.exec(redisKey.slice(head.length));
  if (match === null) return undefined;
  const encoded = [match[1] as string, ...(match[2] as string).split(":").slice(1)];
  const parts: string[] = [];
  for (const part of encoded) {
    const decoded = decodeRedisKeyName(part);
    if (decoded === undefined) return undefined;
    parts.push(decoded);
  }
  return recordKeyProblem({ namespace, parts }) === undefined ? parts : undefined;
}

/**
 * The strategy and symbol of a key made by {@link signalRedisKey}, or `undefined` for any other
 * key.
 * @example parseSignalRedisKey("bot:", "bot:signal:{momentum}:BTC/USDT") // { strategyName: "momentum", symbol: "BTC/USDT" }
 */
export function parseSignalRedisKey(prefix: string, redisKey: string): SignalKey | undefined {
  const parts = parseRecordRedisKey(prefix, "signal", redisKey);
  if (parts === undefined || parts.length !== 2) return undefined;
  const [strategyName, symbol] = parts as [string, string];
  return { strategyName, symbol };
}

/**
 * Checks a key prefix. Braces are refused: a `{` in the prefix would become the hash tag in place
 * of the first key part, and one group's keys could then land in different slots.
 */
export function assertPrefix(prefix: unknown, backend: string): string {
  const context = { backend, operation: "create" } as const;
  if (typeof prefix !== "string")
    throw new InvalidOptionError(`prefix must be a string, got ${typeof prefix}`, context);
  if (/[{}]/.test(prefix)) {
    throw new InvalidOptionError(`prefix must not contain "{" or "}", got ${JSON.stringify(prefix)}`, context);
  }
  return prefix;
}
