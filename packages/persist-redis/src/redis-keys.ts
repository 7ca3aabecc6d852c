import { keyProblem, PersistError, type SignalKey } from "@persist-kit/core";

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
// What `signalRedisKey` puts after the prefix: both names escaped, so neither holds ":", "{" or "}".
const SIGNAL_KEY_BODY = /^signal:\{([^:{}]+)\}:([^:{}]+)$/;

function hexCode(character: string): string {
  return (character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(2, "0");
}

/**
 * Escapes a strategy name or symbol for a Redis key: `:`, `{`, `}`, `*`, `?`, `[`, `]`, `\` and
 * `%` become `%XX` (their hex code), everything else is kept. Reversible with {@link decodeName}.
 * @example encodeName("ETH/USDT:USDT") // "ETH/USDT%3AUSDT"
 */
export function encodeName(name: string): string {
  return name.replace(SPECIAL_CHARACTER, (character) => `${ESCAPE}${CODE_OF.get(character)}`);
}

/**
 * Reverses {@link encodeName}. Text that `encodeName` never produces (a bare special character,
 * an unknown or lowercase escape) gives `undefined`, so every name has exactly one encoding.
 * @example decodeName("ETH/USDT%3AUSDT") // "ETH/USDT:USDT"
 */
export function decodeName(encoded: string): string | undefined {
  let valid = !/[:{}*?[\]\\]/.test(encoded);
  const decoded = encoded.replace(ESCAPE_SEQUENCE, (sequence, code: string | undefined) => {
    const character = code === undefined ? undefined : CHARACTER_OF.get(code);
    if (character === undefined) valid = false;
    return character ?? sequence;
  });
  return valid ? decoded : undefined;
}

/**
 * The Redis key of one signal: `{prefix}signal:{strategy}:{symbol}` with both names escaped by
 * {@link encodeName}. The escaped strategy is the key's cluster hash tag, so all keys of one
 * strategy live in one hash slot (and one MULTI/EXEC can span them).
 * @example signalRedisKey("bot:", "momentum", "BTC/USDT") // "bot:signal:{momentum}:BTC/USDT"
 */
export function signalRedisKey(prefix: string, strategyName: string, symbol: string): string {
  return `${prefix}signal:{${encodeName(strategyName)}}:${encodeName(symbol)}`;
}

/**
 * The SCAN MATCH pattern for the keys under `prefix`: all of them, or one strategy's. Glob
 * characters of the prefix are escaped, and escaped names hold none, so the pattern matches
 * nothing but keys of this prefix (and strategy).
 * @example signalKeyPattern("bot:", "a*") // "bot:signal:{a%2A}:*"
 */
export function signalKeyPattern(prefix: string, strategyName?: string): string {
  const strategy = strategyName === undefined ? "*" : encodeName(strategyName);
  return `${prefix.replace(GLOB_CHARACTER, "\\$&")}signal:{${strategy}}:*`;
}

/**
 * The strategy and symbol of a key made by {@link signalRedisKey}, or `undefined` for any other
 * key (another application's key under the same prefix, say).
 * @example parseSignalRedisKey("bot:", "bot:signal:{momentum}:BTC/USDT") // { strategyName: "momentum", symbol: "BTC/USDT" }
 */
export function parseSignalRedisKey(prefix: string, key: string): SignalKey | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const match = SIGNAL_KEY_BODY.exec(key.slice(prefix.length));
  if (match === null) return undefined;
  const strategyName = decodeName(match[1] as string);
  const symbol = decodeName(match[2] as string);
  if (strategyName === undefined || symbol === undefined) return undefined;
  if (keyProblem(strategyName) !== undefined || keyProblem(symbol) !== undefined) return undefined;
  return { strategyName, symbol };
}

/**
 * Checks a key prefix. Braces are refused: a `{` in the prefix would become the hash tag in place
 * of the strategy, and one strategy's keys could then land in different slots.
 */
export function assertPrefix(prefix: unknown, backend: string): string {
  const context = { backend, operation: "create" } as const;
  if (typeof prefix !== "string") throw new PersistError(`prefix must be a string, got ${typeof prefix}`, context);
  if (/[{}]/.test(prefix)) {
    throw new PersistError(`prefix must not contain "{" or "}", got ${JSON.stringify(prefix)}`, context);
  }
  return prefix;
}
