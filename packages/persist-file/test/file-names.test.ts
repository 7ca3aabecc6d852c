import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeSignalRow, TRICKY_NAMES } from "@persist-kit/contract";
import { keyProblem, type SignalKey } from "@persist-kit/core";
import { decodeName, encodeName, PersistFile, signalFilePath } from "@persist-kit/persist-file";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ESCAPING_NAMES = [
  "..",
  ".",
  "../../x",
  "..\\..\\x",
  "/etc/passwd",
  "C:\\Windows",
  "a/../../b",
  "~",
  "$HOME",
  "x.tmp",
  ".hidden",
  "trailing.",
  "trailing ",
  "a".repeat(255),
  "€".repeat(85),
  "😀".repeat(63),
  "/".repeat(255),
  `${"é".repeat(100)}/..`,
];
const NAMES = [...new Set([...TRICKY_NAMES, ...ESCAPING_NAMES])];

// Valid key names, drawn both from all of Unicode and from a few characters that are easy to
// confuse: letter case, escapes, separators and the two spellings of "é".
const validName = fc
  .oneof(
    fc.string({ unit: "binary", minLength: 1, maxLength: 40 }),
    fc.string({
      unit: fc.constantFrom("a", "A", "e", "E", "%", "^", "+", ".", "/", "_", "-", "2", "F", "\u00e9", "e\u0301"),
      minLength: 1,
      maxLength: 12,
    }),
    fc.string({ unit: "grapheme", minLength: 60, maxLength: 90 }),
  )
  .filter((name) => keyProblem(name) === undefined);

function segmentsOf(baseDir: string, file: string): string[] {
  return path.relative(baseDir, file).split(path.sep);
}

describe("names are encoded reversibly into safe file names", () => {
  it("keeps lowercase names readable and escapes the rest", () => {
    expect(encodeName("momentum_v2-fast")).toBe("momentum_v2-fast");
    expect(encodeName("BTC/USDT")).toBe("^b^t^c%2F^u^s^d^t");
    expect(encodeName("ETH/USDT:USDT")).toBe("^e^t^h%2F^u^s^d^t%3A^u^s^d^t");
    expect(encodeName("a.b")).toBe("a%2Eb");
    expect(encodeName("..")).toBe("%2E%2E");
    expect(encodeName("€")).toBe("%E2%82%AC");
  });

  it("never produces a Windows device name, whatever the case", () => {
    expect(encodeName("con")).toBe("%63on");
    expect(encodeName("nul")).toBe("%6Eul");
    expect(encodeName("com1")).toBe("%63om1");
    expect(encodeName("NUL")).toBe("^n^u^l");
    expect(decodeName("%63on")).toBe("con");
  });

  it("keeps A and a, and the composed and decomposed é, apart on any file system", () => {
    for (const [left, right] of [
      ["A", "a"],
      ["\u00e9", "e\u0301"],
      ["BTC/USDT", "btc/usdt"],
    ] as const) {
      expect(encodeName(left).toLowerCase()).not.toBe(encodeName(right).toLowerCase());
      expect(encodeName(left)).toMatch(/^[\x20-\x7e]+$/);
    }
  });

  it("refuses every spelling that encodeName would not produce", () => {
    for (const foreign of ["", "%61", "%2f", "A", "^A", "a.b", "con", "%C3", "%", "^", "a+", "%2E%2"]) {
      expect(decodeName(foreign), foreign).toBeUndefined();
    }
  });

  it("property: different names never share an encoding, even ignoring case, and each decodes back", () => {
    fc.assert(
      fc.property(validName, validName, (left, right) => {
        expect(decodeName(encodeName(left))).toBe(left);
        if (left !== right) {
          expect(encodeName(left)).not.toBe(encodeName(right));
          expect(encodeName(left).toLowerCase()).not.toBe(encodeName(right).toLowerCase());
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it("property: every path segment is a plain name of at most 255 bytes inside baseDir", () => {
    const baseDir = path.resolve("/store");
    fc.assert(
      fc.property(validName, validName, (symbol, strategyName) => {
        const file = signalFilePath(baseDir, { strategyName, symbol });
        expect(file.startsWith(`${baseDir}${path.sep}`)).toBe(true);
        for (const segment of segmentsOf(baseDir, file)) {
          expect(Buffer.byteLength(segment)).toBeLessThanOrEqual(255);
          expect(segment).not.toMatch(/^\.|\.tmp$/);
          expect(segment).toMatch(/^[a-zA-Z0-9_%^+-]+(\.json)?$/);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("no name escapes baseDir, long names included", () => {
  let jail = "";
  let baseDir = "";
  let persist: PersistFile;
  const text = (key: SignalKey) => JSON.stringify([key.strategyName, key.symbol]);
  const keys: SignalKey[] = [
    ...new Map(
      NAMES.flatMap((name) => [
        { strategyName: "jail", symbol: name },
        { strategyName: name, symbol: "BTC/USDT" },
        { strategyName: name, symbol: name },
      ]).map((key) => [text(key), key]),
    ).values(),
  ];

  beforeAll(async () => {
    jail = await mkdtemp(path.join(tmpdir(), "persist-file-names-"));
    baseDir = path.join(jail, "store");
    await mkdir(baseDir);
    persist = new PersistFile({ baseDir });
  });

  afterAll(async () => {
    await persist.close();
    await rm(jail, { recursive: true, force: true });
  });

  it("every file is written below baseDir, with no segment over 255 bytes", async () => {
    for (const [index, { symbol, strategyName }] of keys.entries()) {
      await persist.writeSignalData(symbol, strategyName, makeSignalRow(index));
    }
    expect(await readdir(jail)).toEqual(["store"]);
    const written = (await readdir(baseDir, { recursive: true, withFileTypes: true })).filter((entry) =>
      entry.isFile(),
    );
    expect(written).toHaveLength(keys.length);
    for (const entry of written) {
      const file = path.join(entry.parentPath, entry.name);
      expect(file.startsWith(`${baseDir}${path.sep}`)).toBe(true);
      for (const segment of segmentsOf(baseDir, file)) expect(Buffer.byteLength(segment)).toBeLessThanOrEqual(255);
    }
  });

  it("each key reads back its own row, and keys() lists each one decoded", async () => {
    for (const [index, { symbol, strategyName }] of keys.entries()) {
      expect(await persist.readSignalData(symbol, strategyName)).toEqual(makeSignalRow(index));
    }
    const listed: SignalKey[] = [];
    for await (const key of persist.keys()) listed.push(key);
    expect(listed.map(text).sort()).toEqual(keys.map(text).sort());
  });

  it("NUL and control characters are refused by core before any file is touched", async () => {
    for (const name of ["a\u0000b", "../\u0000", "line\nbreak", "\u007f"]) {
      await expect(persist.writeSignalData(name, "jail", makeSignalRow(1))).rejects.toThrow(
        expect.objectContaining({ name: "InvalidKeyError" }),
      );
    }
  });
});
