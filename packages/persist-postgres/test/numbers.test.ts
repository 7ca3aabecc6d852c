// The value column is json: it keeps the text as written, so every double reads back bit-identical,
// and PostgreSQL's own json operators see the same numbers. These tests prove both.
import { makeSignalRow } from "@persist-kit/contract";
import fc from "fast-check";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PersistPostgres } from "../src/index.js";
import { adminPool, dropSchemas, testDatabaseUrl, uniqueName } from "./postgres-test-env.js";

const schema = uniqueName("pk_numbers");
let url = "";
let admin: pg.Pool | undefined;
let persist: PersistPostgres;

const EDGE_VALUES = [
  5e-324, // smallest subnormal
  2.2250738585072014e-308, // smallest normal
  1.7976931348623157e308, // largest double
  0.1 + 0.2,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 53 - 1,
  64231.12345678901,
  123456789.12345679,
  0.1,
  1 / 3,
  Math.PI,
  1e-12,
  1.2345678901234568e-300,
  9.999999999999999e22,
  1e21,
  4.35,
];

beforeAll(async () => {
  url = await testDatabaseUrl();
  admin = adminPool(url);
  persist = new PersistPostgres({ connectionString: url, schema });
});

afterAll(async () => {
  await persist?.close();
  if (admin === undefined) return;
  await dropSchemas(admin, [schema]);
  await admin.end();
});

function expectBitIdentical(actual: unknown[], expected: readonly number[]): void {
  expect(actual).toHaveLength(expected.length);
  for (const [index, value] of expected.entries()) {
    expect(Object.is(actual[index], value), `${value} came back as ${String(actual[index])}`).toBe(true);
  }
}

describe("numbers read back bit-identical through the json column", () => {
  it("edge values as prices and as an array of negatives and positives", async () => {
    const signed = [...EDGE_VALUES, ...EDGE_VALUES.map((value) => -value)];
    for (const [index, value] of EDGE_VALUES.entries()) {
      const row = makeSignalRow(index, { priceOpen: value, priceTakeProfit: value, cost: -value, numbers: signed });
      await persist.writeSignalData("BTC/USDT", `edge-${index}`, row);
      const back = await persist.readSignalData("BTC/USDT", `edge-${index}`);
      expect(back).toEqual(row);
      expectBitIdentical([back?.priceOpen, back?.priceTakeProfit, back?.cost], [value, value, -value]);
      expectBitIdentical(back?.numbers as unknown[], signed);
    }
  });

  it("the stored text is what JSON.stringify wrote, and SQL's -> sees the same doubles (checked with a second pool)", async () => {
    const row = makeSignalRow(1, { numbers: EDGE_VALUES });
    await persist.writeSignalData("BTC/USDT", "printed", row);
    const result = await admin?.query(
      `SELECT value -> 'numbers' AS parsed, (value -> 'numbers')::text AS printed FROM ${persist.tableName}
       WHERE namespace = 'signal' AND key[1] = 'printed'`,
    );
    expectBitIdentical(result?.rows[0].parsed, EDGE_VALUES);
    expectBitIdentical(JSON.parse(result?.rows[0].printed), EDGE_VALUES);
    expect(result?.rows[0].printed).toBe(JSON.stringify(EDGE_VALUES));
  });

  it("many arbitrary doubles, from subnormal to the largest", async () => {
    const anyDouble = fc.double({ noNaN: true, noDefaultInfinity: true }).filter((value) => !Object.is(value, -0));
    await fc.assert(
      fc.asyncProperty(fc.array(anyDouble, { minLength: 1, maxLength: 200 }), async (numbers) => {
        await persist.writeSignalData("BTC/USDT", "arbitrary", makeSignalRow(1, { numbers }));
        const back = await persist.readSignalData("BTC/USDT", "arbitrary");
        expectBitIdentical(back?.numbers as unknown[], numbers);
      }),
      { numRuns: 100 },
    );
  });

  it("integers up to 2^53 and large timestamps", async () => {
    const integers = [0, 1, 2 ** 31, 2 ** 32 + 1, 1_732_000_000_123, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 60];
    const row = makeSignalRow(1, { openTimestamp: 2 ** 53, integers });
    await persist.writeSignalData("BTC/USDT", "integers", row);
    const back = await persist.readSignalData("BTC/USDT", "integers");
    expect(back?.openTimestamp).toBe(2 ** 53);
    expectBitIdentical(back?.integers as unknown[], integers);
  });
});
