// A bot catches persist-kit's errors by class and by code however it loaded the packages: from an
// ES module or from CommonJS, from createPersist's backend or through PersistSignalAdapter.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installProject, pack, runScript } from "./packed.js";

// The body of an async function with `core` (the package object) in scope; prints what it caught.
const CATCHES = `
const { BackendUnavailableError, CorruptDataError, PERSIST_ERROR_CODES, PersistSignalAdapter, createPersist } = core;
const caught = async (run) => {
  try {
    await run();
    return "no error";
  } catch (error) {
    return {
      corrupt: error instanceof CorruptDataError,
      unavailable: error instanceof BackendUnavailableError,
      code: error.code,
      name: error.name,
      message: error.message,
    };
  }
};
const file = await createPersist("file:./signals");
await file.records.write({ namespace: "signal", parts: ["momentum", "BTC/USDT"] }, JSON.stringify({ id: "x" }));
const redis = await createPersist("redis://127.0.0.1:1", { timeoutMs: 1000 });
const result = {
  codes: [PERSIST_ERROR_CODES.CorruptDataError, PERSIST_ERROR_CODES.BackendUnavailableError],
  corruptFromBackend: await caught(() => file.readSignalData("BTC/USDT", "momentum")),
  corruptThroughAdapter: await caught(() => new PersistSignalAdapter(file).waitForInit("BTC/USDT", "momentum")),
  unavailableFromBackend: await caught(() => redis.readSignalData("BTC/USDT", "momentum")),
  unavailableThroughAdapter: await caught(() => new PersistSignalAdapter(redis).waitForInit("BTC/USDT", "momentum")),
};
await file.close();
await redis.close();
console.log(JSON.stringify(result));`;

describe("error identity across module systems and through the adapter", () => {
  let tarballDir: string;
  let project: string;

  beforeAll(async () => {
    tarballDir = mkdtempSync(join(tmpdir(), "persist-kit-tarballs-"));
    const tarballs = await pack(["core", "persist-file", "persist-redis"], tarballDir);
    project = await installProject([...Object.values(tarballs), "ioredis"]);
  });

  afterAll(() => {
    rmSync(tarballDir, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  });

  const expectCaught = (stdout: string) => {
    const result = JSON.parse(stdout);
    const [corruptCode, unavailableCode] = result.codes;
    expect(corruptCode).toBe("PERSIST_CORRUPT_DATA");
    expect(unavailableCode).toBe("PERSIST_BACKEND_UNAVAILABLE");
    for (const key of ["corruptFromBackend", "corruptThroughAdapter"]) {
      expect(result[key], key).toMatchObject({
        corrupt: true,
        unavailable: false,
        code: corruptCode,
        name: "CorruptDataError",
      });
    }
    for (const key of ["unavailableFromBackend", "unavailableThroughAdapter"]) {
      expect(result[key], key).toMatchObject({
        corrupt: false,
        unavailable: true,
        code: unavailableCode,
        name: "BackendUnavailableError",
      });
      // The backend's own message, not wrapped in the adapter's.
      expect(result[key].message, key).toMatch(/^\[redis\] /);
    }
    expect(result.corruptThroughAdapter.message).toMatch(/^\[file\] /);
  };

  it("an ES module catches CorruptDataError and BackendUnavailableError by class and by code", async () => {
    const stdout = await runScript(project, "errors.mjs", `import * as core from "@persist-kit/core";\n${CATCHES}`);
    expectCaught(stdout);
  });

  it("a CommonJS bot catches CorruptDataError and BackendUnavailableError by class and by code", async () => {
    const stdout = await runScript(
      project,
      "errors.cjs",
      `const core = require("@persist-kit/core");\n(async () => {${CATCHES}\n})();`,
    );
    expectCaught(stdout);
  });
});
