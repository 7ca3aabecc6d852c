import { describe, expect, it } from "vitest";
import { countsFor, FAMILY_NAMES, parseOptions } from "../src/options.js";

describe("parseOptions", () => {
  it("runs every family five times by default, three in a quick run", () => {
    expect(parseOptions([])).toMatchObject({ quick: false, reps: 5, only: [...FAMILY_NAMES] });
    expect(parseOptions(["--", "--quick"])).toMatchObject({ quick: true, reps: 3 });
  });

  it("takes --only and --reps with a space or an equals sign, in the families' own order", () => {
    expect(parseOptions(["--only", "redis,file"]).only).toEqual(["file", "redis"]);
    expect(parseOptions(["--only=mongo", "--reps=7"])).toMatchObject({ only: ["mongo"], reps: 7 });
  });

  it("refuses unknown options, unknown families and bad repetition counts", () => {
    expect(() => parseOptions(["--fast"])).toThrow(/unknown option/);
    expect(() => parseOptions(["--only", "redis,sqlite"])).toThrow(/sqlite/);
    expect(() => parseOptions(["--reps", "0"])).toThrow(/--reps/);
    expect(() => parseOptions(["--reps"])).toThrow(/needs a value/);
  });
});

describe("countsFor", () => {
  it("uses a few hundred keys and 100k backtest cycles in a full run, far less in a quick one", () => {
    const full = countsFor(false);
    const quick = countsFor(true);
    expect(full.keys).toBeGreaterThanOrEqual(200);
    expect(full.backtest).toEqual({ cycles: 100_000, symbols: 100 });
    expect(full.inFlight).toEqual([16, 64]);
    expect(quick.keys).toBeLessThan(full.keys);
    expect(quick.backtest.cycles).toBeLessThan(full.backtest.cycles);
  });
});
