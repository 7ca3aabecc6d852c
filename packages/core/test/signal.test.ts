import { describe, expect, it } from "vitest";
import {
  assertSignalRow,
  CorruptDataError,
  InvalidSignalError,
  type ISignalRow,
  parseSignalRow,
  serializeSignalRow,
  signalRowProblem,
} from "../src/index.js";

const context = { backend: "test", operation: "write", symbol: "BTC/USDT", strategyName: "s" } as const;

const row: ISignalRow = {
  id: "signal-1",
  position: "long",
  priceOpen: 64_000.5,
  priceTakeProfit: 66_000,
  priceStopLoss: 63_000,
  openTimestamp: 1_732_000_000_000,
  minuteEstimatedTime: 60,
};

describe("a valid row", () => {
  it("passes validation, with optional and unknown extra fields kept", () => {
    const withExtras = {
      ...row,
      note: "ø",
      partialCloses: [{ type: "profit", percent: 50, price: 65_000 }],
      custom: { a: [1, null, "x"] },
    };
    expect(signalRowProblem(withExtras)).toBeUndefined();
    expect(parseSignalRow(serializeSignalRow(withExtras as ISignalRow), context)).toEqual(withExtras);
  });

  it("may carry optional fields set to undefined", () => {
    expect(signalRowProblem({ ...row, note: undefined, extra: { gone: undefined } })).toBeUndefined();
  });
});

describe("an invalid row is refused with InvalidSignalError", () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ["NaN price", { priceOpen: Number.NaN }, /priceOpen must be finite/],
    ["Infinity price", { priceTakeProfit: Number.POSITIVE_INFINITY }, /priceTakeProfit must be finite/],
    ["zero price", { priceStopLoss: 0 }, /priceStopLoss must be greater than 0/],
    ["negative price", { priceOpen: -3 }, /priceOpen must be greater than 0/],
    ["empty id", { id: "" }, /id must not be empty/],
    ["unknown position", { position: "flat" }, /position must be "long" or "short"/],
    ["infinite timestamp", { openTimestamp: Number.NEGATIVE_INFINITY }, /openTimestamp must be finite/],
    ["negative lifetime", { minuteEstimatedTime: -1 }, /minuteEstimatedTime must not be negative/],
    ["numeric string price", { priceOpen: "1" }, /priceOpen must be a number/],
    ["NaN in an extra field", { deep: { x: [1, Number.NaN] } }, /signal\.deep\.x\[1\] must be a finite number/],
    ["Date in an extra field", { at: new Date(0) }, /signal\.at must be a plain object, got Date/],
    ["undefined in an array", { list: [undefined] }, /signal\.list\[0\] must not be undefined/],
    ["bigint in an extra field", { big: 1n }, /must be JSON data, got bigint/],
    [
      "bad partial close",
      { partialCloses: [{ type: "profit", percent: 10, price: 0 }] },
      /partialCloses\[0\]\.price must be greater than 0/,
    ],
  ];
  for (const [name, change, message] of cases) {
    it(name, () => {
      const bad = { ...row, ...change };
      expect(() => assertSignalRow(bad, context)).toThrow(InvalidSignalError);
      expect(() => assertSignalRow(bad, context)).toThrow(message);
    });
  }

  it("a missing required field", () => {
    const { priceTakeProfit: _, ...missing } = row;
    expect(signalRowProblem(missing)).toMatch(/priceTakeProfit must be a number, got undefined/);
  });

  it("not an object", () => {
    for (const value of [null, "row", 1, [row]]) expect(signalRowProblem(value)).toMatch(/signal must be an object/);
  });
});

describe("stored data", () => {
  it("that does not parse is a CorruptDataError naming the key and the location", () => {
    expect(() => parseSignalRow("{", context, "/data/s/BTC.json")).toThrow(CorruptDataError);
    expect(() => parseSignalRow("{", context, "/data/s/BTC.json")).toThrow(
      /"s"\/"BTC\/USDT".*not JSON.*in \/data\/s\/BTC\.json/,
    );
  });

  it("that parses into an invalid row is a CorruptDataError", () => {
    expect(() => parseSignalRow(JSON.stringify({ ...row, priceOpen: null }), context)).toThrow(/not a valid signal/);
  });
});
