import { makeSignalRow, TRICKY_NAMES } from "@persist-kit/contract";
import { getRedisUrl } from "@persist-kit/tools-test-servers";
import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  decodeRedisKeyName,
  encodeRedisKeyName,
  floorRedisKey,
  PersistRedis,
  parseRecordRedisKey,
  parseSignalRedisKey,
  recordKeyPattern,
  recordRedisKey,
  signalRedisKey,
} from "../src/index.js";
import { deleteKeys, uniquePrefix } from "./helpers.js";

// Names built mostly from the characters that mean something in a key, a hash tag or a pattern.
const name = fc
  .array(fc.oneof(fc.constantFrom(":", "{", "}", "*", "?", "[", "]", "\\", "%", "^", "-", "a", "b"), fc.string()), {
    minLength: 1,
    maxLength: 12,
  })
  .map((parts) => parts.join(""))
  .filter((text) => text.length > 0 && !/[\u0000-\u001f\u007f-\u009f]/.test(text) && text.isWellFormed());
const prefix = fc.string({ maxLength: 8 }).map((text) => `${text.replace(/[{}]/g, "")}:`);

/** The part of a key Redis Cluster hashes: the first non-empty `{...}`, else the whole key. */
function hashTag(key: string): string {
  const open = key.indexOf("{");
  if (open === -1) return key;
  const close = key.indexOf("}", open + 1);
  return close === -1 || close === open + 1 ? key : key.slice(open + 1, close);
}

describe("key encoding", () => {
  it("escapes : { } * ? [ ] \\ and % and nothing else", () => {
    expect(encodeRedisKeyName("ETH/USDT:USDT")).toBe("ETH/USDT%3AUSDT");
    expect(encodeRedisKeyName("{a}*?[b]\\%")).toBe("%7Ba%7D%2A%3F%5Bb%5D%5C%25");
    expect(encodeRedisKeyName("BTC/USDT ビット 😀")).toBe("BTC/USDT ビット 😀");
    expect(signalRedisKey("bot:", { strategyName: "momentum", symbol: "ETH/USDT:USDT" })).toBe(
      "bot:signal:{momentum}:ETH/USDT%3AUSDT",
    );
    expect(recordRedisKey("bot:", { namespace: "risk", parts: ["a:b", "c", "d}"] })).toBe("bot:risk:{a%3Ab}:c:d%7D");
    expect(floorRedisKey("bot:", { namespace: "risk", parts: ["a:b", "c"] })).toBe("bot:floor:risk:{a%3Ab}");
  });

  it("decodes only what it encodes, so each name has one key", () => {
    expect(decodeRedisKeyName("%3A%25")).toBe(":%");
    for (const foreign of ["%41", "%3a", "%", "%3", "a:b", "{x}", "a*"])
      expect(decodeRedisKeyName(foreign)).toBeUndefined();
  });

  it("names round-trip, never collide, and the strategy is the hash tag (property)", () => {
    fc.assert(
      fc.property(prefix, name, name, name, name, (keyPrefix, strategyA, symbolA, strategyB, symbolB) => {
        const keyA = signalRedisKey(keyPrefix, { strategyName: strategyA, symbol: symbolA });
        const keyB = signalRedisKey(keyPrefix, { strategyName: strategyB, symbol: symbolB });
        expect(parseSignalRedisKey(keyPrefix, keyA)).toEqual({ strategyName: strategyA, symbol: symbolA });
        expect(keyA === keyB).toBe(strategyA === strategyB && symbolA === symbolB);
        expect(hashTag(keyA)).toBe(encodeRedisKeyName(strategyA));
        expect(hashTag(keyA) === hashTag(keyB)).toBe(strategyA === strategyB);
      }),
      { numRuns: 2_000 },
    );
  });

  it("the contract's tricky names round-trip", () => {
    for (const tricky of TRICKY_NAMES) {
      expect(decodeRedisKeyName(encodeRedisKeyName(tricky))).toBe(tricky);
      expect(parseSignalRedisKey("p:", signalRedisKey("p:", { strategyName: tricky, symbol: tricky }))).toEqual({
        strategyName: tricky,
        symbol: tricky,
      });
    }
  });

  it("escapes glob characters of the prefix in SCAN patterns", () => {
    expect(recordKeyPattern("a*[b]?\\:", "signal")).toBe("a\\*\\[b\\]\\?\\\\:signal:{*}*");
    expect(recordKeyPattern("bot:", "signal", ["a*", "ignored"])).toBe("bot:signal:{a%2A}*");
  });

  it("record keys of any namespace and part count round-trip; a floor key is never a record key (property)", () => {
    const namespace = fc.stringMatching(/^[a-z][a-z0-9-]{0,5}$/);
    const parts = fc.array(name, { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(prefix, namespace, parts, namespace, (keyPrefix, space, keyParts, otherSpace) => {
        const key = { namespace: space, parts: keyParts };
        const redisKey = recordRedisKey(keyPrefix, key);
        expect(parseRecordRedisKey(keyPrefix, space, redisKey)).toEqual(keyParts);
        expect(hashTag(redisKey)).toBe(encodeRedisKeyName(keyParts[0] as string));
        // The floor key shares the record's hash slot, and no namespace reads it as a record.
        const floorKey = floorRedisKey(keyPrefix, key);
        expect(hashTag(floorKey)).toBe(hashTag(redisKey));
        expect(parseRecordRedisKey(keyPrefix, otherSpace, floorKey)).toBeUndefined();
        expect(parseRecordRedisKey(keyPrefix, "floor", floorKey)).toBeUndefined();
        if (otherSpace !== space) expect(parseRecordRedisKey(keyPrefix, otherSpace, redisKey)).toBeUndefined();
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("SCAN patterns on a real server", () => {
  const runPrefix = uniquePrefix("keys");
  let url = "";
  let raw: Redis;
  let namespaces = 0;

  beforeAll(async () => {
    url = await getRedisUrl();
    raw = new Redis(url);
  });

  afterAll(async () => {
    await deleteKeys(raw, runPrefix);
    await raw.quit();
  });

  async function listed(persist: PersistRedis, strategyName?: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const key of persist.keys({ strategyName })) keys.push(JSON.stringify([key.strategyName, key.symbol]));
    return keys.sort();
  }

  it("strategy a* lists only its own keys, not ab's; ab does not list a*'s", async () => {
    const persist = new PersistRedis({ url, prefix: `${runPrefix}${++namespaces}:` });
    try {
      const row = makeSignalRow(1);
      for (const strategy of ["a*", "ab", "a?", "a[b]", "[ab]", "a", "a\\", "b"]) {
        await persist.writeSignalData("X", strategy, row);
      }
      expect(await listed(persist, "a*")).toEqual([JSON.stringify(["a*", "X"])]);
      expect(await listed(persist, "ab")).toEqual([JSON.stringify(["ab", "X"])]);
      expect(await listed(persist, "a?")).toEqual([JSON.stringify(["a?", "X"])]);
      expect(await listed(persist, "[ab]")).toEqual([JSON.stringify(["[ab]", "X"])]);
      expect(await listed(persist, "a")).toEqual([JSON.stringify(["a", "X"])]);
      expect(await listed(persist)).toHaveLength(8);
    } finally {
      await persist.close();
    }
  });

  it("a pattern never matches another strategy's or another prefix's keys (property)", async () => {
    await fc.assert(
      fc.asyncProperty(prefix, prefix, name, name, async (prefixA, prefixB, strategyA, strategyB) => {
        const namespace = `${runPrefix}${++namespaces}:`;
        const a = new PersistRedis({ url, prefix: `${namespace}${prefixA}` });
        const b = new PersistRedis({ url, prefix: `${namespace}${prefixB}` });
        try {
          await a.writeSignalData("A", strategyA, makeSignalRow(1));
          await a.writeSignalData("B", strategyB, makeSignalRow(2));
          await b.writeSignalData("C", strategyA, makeSignalRow(3));
          // Another prefix, even one that starts with this one or matches it as a glob, stays apart.
          const samePrefix = prefixA === prefixB;
          const ofStrategyA = [JSON.stringify([strategyA, "A"])];
          if (strategyB === strategyA) ofStrategyA.push(JSON.stringify([strategyB, "B"]));
          if (samePrefix) ofStrategyA.push(JSON.stringify([strategyA, "C"]));
          expect(await listed(a, strategyA)).toEqual(ofStrategyA.sort());
          const all = [JSON.stringify([strategyA, "A"]), JSON.stringify([strategyB, "B"])];
          if (samePrefix) all.push(JSON.stringify([strategyA, "C"]));
          expect(await listed(a)).toEqual(all.sort());
        } finally {
          await a.close();
          await b.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
