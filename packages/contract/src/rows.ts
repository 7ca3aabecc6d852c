import type { ISignalRow } from "@persist-kit/core";
import fc from "fast-check";

/** A realistic row (about 420 bytes of JSON), distinct for each `sequence`. */
export function makeSignalRow(sequence: number, extra: Record<string, unknown> = {}): ISignalRow {
  return {
    id: `signal-${sequence}`,
    position: sequence % 2 === 0 ? "long" : "short",
    priceOpen: 64_231.17 + sequence / 1000,
    priceTakeProfit: 66_158.1051,
    priceStopLoss: 62_946.546_6,
    openTimestamp: 1_732_000_000_000 + sequence,
    minuteEstimatedTime: 240,
    symbol: "BTC/USDT",
    strategyName: "contract-strategy",
    exchangeName: "binance",
    note: `opened by the contract suite, sequence ${sequence}`,
    cost: 100,
    scheduledAt: 1_732_000_000_000,
    pendingAt: 1_732_000_000_000 + sequence,
    partialCloses: [{ type: "profit", percent: 25, price: 65_000.5 }],
    ...extra,
  };
}

/**
 * A row whose length depends on `sequence`, so a write torn between two versions can never look
 * like either of them.
 */
export function makeTrialRow(writer: string, sequence: number): ISignalRow {
  return makeSignalRow(sequence, {
    writer,
    sequence,
    padding: "x".repeat((sequence * 37) % 2048),
  });
}

const KNOWN_FIELDS = new Set(Object.keys(makeSignalRow(0)).concat("writer", "sequence", "padding"));

/** Finite doubles, from subnormal to the largest, excluding -0 (which JSON writes as 0). */
export const finiteNumber = fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0));

/** Prices: finite doubles greater than 0, tiny, huge and with many digits. */
export const price = fc.oneof(
  fc.double({ min: Number.MIN_VALUE, noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(Number.MIN_VALUE, 1e-12, 0.1 + 0.2, 64_231.123_456_789_01, 2 ** 53 + 2, Number.MAX_VALUE),
);

/** Integer timestamps in milliseconds, up to 2^53. */
export const timestamp = fc.oneof(fc.maxSafeNat(), fc.constantFrom(0, 2 ** 53 - 1, 2 ** 53));

const extraName = fc
  .string({ minLength: 1, maxLength: 12 })
  .filter((name) => !KNOWN_FIELDS.has(name) && name !== "__proto__");

const jsonLeaf = fc.oneof(fc.constant(null), fc.boolean(), finiteNumber, fc.string({ unit: "grapheme" }));

/** Nested plain JSON, as extra fields a bot might carry. */
export const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small" }, jsonLeaf, tie("array"), tie("object")),
  array: fc.array(tie("value"), { maxLength: 4 }),
  object: fc.dictionary(extraName, tie("value"), { maxKeys: 4, noNullPrototype: true }),
})).value;

/** Arbitrary valid rows: any prices, timestamps up to 2^53, unicode notes, nested extra fields. */
export const signalRow: fc.Arbitrary<ISignalRow> = fc
  .record({
    id: fc.string({ minLength: 1, unit: "grapheme" }),
    position: fc.constantFrom("long" as const, "short" as const),
    priceOpen: price,
    priceTakeProfit: price,
    priceStopLoss: price,
    openTimestamp: timestamp,
    minuteEstimatedTime: fc.nat(),
    note: fc.string({ unit: "grapheme" }),
    cost: finiteNumber,
    extra: fc.dictionary(extraName, jsonValue, { maxKeys: 5, noNullPrototype: true }),
  })
  .map(({ extra, ...row }) => ({ ...extra, ...row }));

/** Names that must be stored as distinct, ordinary keys. */
export const TRICKY_NAMES: readonly string[] = [
  "BTC/USDT",
  "ETH/USDT:USDT",
  "a:b",
  "a",
  "b:c",
  "{tag}",
  "$gt",
  "a.b",
  ".",
  "..",
  "../../escape",
  "/absolute",
  "C:\\windows",
  "con",
  "NUL",
  "with space",
  " ",
  "*?[]",
  "%2F",
  "'; DROP TABLE signals; --",
  '{"$gt": ""}',
  "BTC／USDT",
  "ビットコイン",
  "😀",
  "e\u0301",
  "\u00e9",
  "A",
  "a".repeat(255),
  "€".repeat(85),
];

/** Names that must be refused before any I/O. */
export const INVALID_NAMES: readonly string[] = [
  "",
  "a\u0000b",
  "line\nbreak",
  "tab\t",
  "\u007f",
  "\u0085",
  "a".repeat(256),
  "€".repeat(86),
  "\ud800",
];
