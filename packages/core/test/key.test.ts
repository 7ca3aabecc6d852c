import { describe, expect, it } from "vitest";
import { assertSignalKey, InvalidKeyError, keyProblem, MAX_KEY_BYTES } from "../src/index.js";

const context = { backend: "test", operation: "read" } as const;

describe("key validation", () => {
  it("accepts ccxt symbols and any printable unicode up to 255 UTF-8 bytes", () => {
    for (const name of [
      "BTC/USDT",
      "ETH/USDT:USDT",
      "..",
      "a b",
      "ビットコイン",
      "😀",
      "x".repeat(MAX_KEY_BYTES),
      "€".repeat(85),
    ]) {
      expect(keyProblem(name), name).toBeUndefined();
    }
  });

  it.each([
    ["", /must not be empty/],
    ["a\u0000", /control characters/],
    ["a\nb", /control characters/],
    ["\u007f", /control characters/],
    ["\u009f", /control characters/],
    ["x".repeat(256), /at most 255 UTF-8 bytes, got 256/],
    ["€".repeat(86), /got 258/],
    ["\udc00", /lone surrogates/],
  ])("refuses %j", (name, message) => {
    expect(keyProblem(name)).toMatch(message);
    expect(() => assertSignalKey(name, "ok", context)).toThrow(InvalidKeyError);
    expect(() => assertSignalKey("ok", name, context)).toThrow(message);
  });

  it("refuses non-strings", () => {
    expect(() => assertSignalKey(undefined, "ok", context)).toThrow(/symbol must be a string, got undefined/);
  });
});
