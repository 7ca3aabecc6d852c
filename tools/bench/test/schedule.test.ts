import { describe, expect, it } from "vitest";
import { roundOrder } from "../src/schedule.js";

describe("roundOrder", () => {
  it("rotates the contenders by one place per round: A B C, B C A, C A B, A B C", () => {
    const order = [0, 1, 2, 3].map((round) => roundOrder(["A", "B", "C"], round).join(" "));
    expect(order).toEqual(["A B C", "B C A", "C A B", "A B C"]);
  });

  it("puts every contender at every position once over as many rounds as contenders", () => {
    const items = ["A", "B", "C", "D"];
    for (let position = 0; position < items.length; position++) {
      const atPosition = items.map((_, round) => roundOrder(items, round)[position]);
      expect(new Set(atPosition).size).toBe(items.length);
    }
  });

  it("keeps every contender exactly once and leaves the input alone", () => {
    const items = ["A", "B", "C"];
    expect(roundOrder(items, 7).sort()).toEqual(["A", "B", "C"]);
    expect(items).toEqual(["A", "B", "C"]);
    expect(roundOrder([], 3)).toEqual([]);
  });
});
