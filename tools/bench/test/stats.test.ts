import { describe, expect, it } from "vitest";
import { median, pairedRatio, percentile } from "../src/stats.js";

describe("percentile", () => {
  it("interpolates linearly between the nearest ranks", () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([10, 20, 30, 40, 50], 25)).toBe(20);
    expect(percentile([0, 10], 99)).toBeCloseTo(9.9);
  });

  it("does not depend on the input order and leaves the input alone", () => {
    const values = [5, 1, 4, 2, 3];
    expect(percentile(values, 50)).toBe(3);
    expect(values).toEqual([5, 1, 4, 2, 3]);
  });

  it("gives the extremes at 0 and 100, and the value itself for one sample", () => {
    expect(percentile([3, 9, 1], 0)).toBe(1);
    expect(percentile([3, 9, 1], 100)).toBe(9);
    expect(percentile([7], 99)).toBe(7);
  });

  it("p99 of 1..100 lies between the 99th and the 100th value", () => {
    const values = Array.from({ length: 100 }, (_, index) => index + 1);
    expect(percentile(values, 99)).toBeCloseTo(99.01);
  });

  it("refuses an empty list and a percentile outside 0-100", () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe("median", () => {
  it("is the middle value, or the mean of the two middle ones", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});

describe("pairedRatio", () => {
  it("is the median of the per-round ratios, not the ratio of the medians", () => {
    // Round 2 ran on a slow machine for both: its ratio is still 1.
    expect(pairedRatio([10, 100, 10], [10, 100, 5])).toBe(1);
    expect(pairedRatio([1, 2, 3], [2, 2, 2])).toBe(1);
  });

  it("skips rounds that one side lacks, and is undefined when no round has both", () => {
    expect(pairedRatio([2, undefined, 4], [1, 1, 1])).toBe(3);
    expect(pairedRatio([1, 1], [undefined, undefined])).toBeUndefined();
    expect(pairedRatio([], [])).toBeUndefined();
  });
});
