import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import {
  BackendClosedError,
  BackendUnavailableError,
  CorruptDataError,
  getConfig,
  InvalidOptionError,
  KeyedQueue,
  Lifecycle,
  listenError,
  listenWarning,
  PersistError,
  PersistMemory,
  RetryingOnce,
  setConfig,
  UNAVAILABLE_SOCKET_CODES,
  wholeNumberOption,
  wrapDriverError,
} from "../src/index.js";

describe("errors carry a stable code and an outcome, recognisable across copies", () => {
  it("each class has its code; a refused input is not-applied, an unreachable store unknown by default", () => {
    const corrupt = new CorruptDataError("bad", { backend: "file", operation: "read" });
    expect(corrupt.code).toBe("PERSIST_CORRUPT_DATA");
    expect(corrupt.outcome).toBe("not-applied");
    const unavailable = new BackendUnavailableError("down", { backend: "redis", operation: "write" });
    expect(unavailable.code).toBe("PERSIST_BACKEND_UNAVAILABLE");
    expect(unavailable.outcome).toBe("unknown");
    expect(
      new BackendUnavailableError("refused", { backend: "redis", operation: "write", outcome: "not-applied" }).outcome,
    ).toBe("not-applied");
  });

  it("instanceof holds for an error made by the CommonJS build, and only for its own classes", async () => {
    const require = createRequire(import.meta.url);
    const commonJs = require("../dist/index.cjs") as typeof import("../src/index.js");
    const foreign = new commonJs.CorruptDataError("bad", { backend: "file", operation: "read" });
    expect(foreign).toBeInstanceOf(CorruptDataError);
    expect(foreign).toBeInstanceOf(PersistError);
    expect(foreign instanceof BackendUnavailableError).toBe(false);
    expect(new Error("plain") instanceof PersistError).toBe(false);
    expect(new CorruptDataError("x", { backend: "b", operation: "read" }) instanceof commonJs.CorruptDataError).toBe(
      true,
    );
  });

  it("listeners, warnings and the config are shared by the CommonJS and the ESM copy in one process", async () => {
    const require = createRequire(import.meta.url);
    const commonJs = require("../dist/index.cjs") as typeof import("../src/index.js");
    const heard: string[] = [];
    const stopErrors = listenError((error) => heard.push(`error: ${error.message}`));
    const stopWarnings = listenWarning((warning) => heard.push(`warning: ${warning.message}`));
    try {
      commonJs.reportError(new commonJs.PersistError("from the CommonJS copy", { backend: "cjs", operation: "read" }));
      commonJs.reportWarning({ backend: "cjs", kind: "durability", message: "a CommonJS warning" });
      expect(heard).toEqual(["error: [cjs] read: from the CommonJS copy", "warning: a CommonJS warning"]);
      const persistAdapter = () => new PersistMemory();
      commonJs.setConfig({ persistAdapter });
      expect(getConfig().persistAdapter).toBe(persistAdapter);
    } finally {
      stopErrors();
      stopWarnings();
      setConfig({ persistAdapter: undefined });
    }
  });

  it("a subclass an application defines still works with instanceof", () => {
    class MyError extends PersistError {}
    const mine = new MyError("m", { backend: "custom", operation: "write" });
    expect(mine).toBeInstanceOf(MyError);
    expect(mine).toBeInstanceOf(PersistError);
    expect(new PersistError("p", { backend: "custom", operation: "write" }) instanceof MyError).toBe(false);
  });
});

describe("driver errors are wrapped once, with the backend's rules", () => {
  const rules = { isUnavailable: (error: unknown) => (error as { code?: string }).code === "ECONNRESET" };

  it("an unavailable change is BackendUnavailableError with outcome unknown; a read is not-applied", () => {
    const reset = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    const write = wrapDriverError(reset, { backend: "x", operation: "write" }, rules);
    expect(write).toBeInstanceOf(BackendUnavailableError);
    expect(write.outcome).toBe("unknown");
    expect(write.message).toContain("may have been applied");
    const read = wrapDriverError(reset, { backend: "x", operation: "read" }, rules);
    expect(read.outcome).toBe("not-applied");
    expect(read.cause).toBe(reset);
  });

  it("a PersistError passes unchanged; EHOSTDOWN counts as a socket failure", () => {
    const original = new CorruptDataError("bad", { backend: "x", operation: "read" });
    expect(wrapDriverError(original, { backend: "x", operation: "read" }, rules)).toBe(original);
    expect(UNAVAILABLE_SOCKET_CODES.has("EHOSTDOWN")).toBe(true);
  });
});

describe("the backend kit", () => {
  it("wholeNumberOption: the default for undefined, the value in bounds, one message shape otherwise", () => {
    expect(wholeNumberOption("x", "timeoutMs", undefined, { default: 5, min: 1 })).toBe(5);
    expect(wholeNumberOption("x", "timeoutMs", 7, { default: 5, min: 1 })).toBe(7);
    for (const bad of [0, 1.5, Number.NaN, "7", 2 ** 53, 11]) {
      expect(() => wholeNumberOption("x", "timeoutMs", bad, { default: 5, min: 1, max: 10 })).toThrow(
        InvalidOptionError,
      );
    }
    expect(() => wholeNumberOption("x", "timeoutMs", 0, { default: 5, min: 1, max: 10 })).toThrow(
      "timeoutMs must be a whole number from 1 to 10, got 0",
    );
  });

  it("KeyedQueue runs one key's operations in call order, other keys at once", async () => {
    const queue = new KeyedQueue();
    const order: string[] = [];
    let releaseFirst: () => void = () => {};
    const first = queue.run("a", () =>
      new Promise<void>((resolve) => (releaseFirst = resolve)).then(() => order.push("a1")),
    );
    const second = queue.run("a", async () => order.push("a2"));
    await queue.run("b", async () => order.push("b1"));
    expect(order).toEqual(["b1"]);
    releaseFirst();
    await Promise.all([first, second]);
    expect(order).toEqual(["b1", "a1", "a2"]);
  });

  it("KeyedQueue goes on after a failed operation", async () => {
    const queue = new KeyedQueue();
    await expect(queue.run("a", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await queue.run("a", async () => 2)).toBe(2);
  });

  it("RetryingOnce shares one attempt, forgets a failure, keeps a success", async () => {
    let attempts = 0;
    const value = new RetryingOnce(async () => {
      attempts++;
      if (attempts === 1) throw new Error("first fails");
      return attempts;
    });
    await expect(value.get()).rejects.toThrow("first fails");
    const [a, b] = await Promise.all([value.get(), value.get()]);
    expect([a, b, attempts, value.done]).toEqual([2, 2, 2, true]);
    expect(await value.get()).toBe(2);
  });

  it("Lifecycle: close waits for running operations, then refuses with BackendClosedError", async () => {
    const lifecycle = new Lifecycle();
    let finish: () => void = () => {};
    const running = lifecycle.run(
      { backend: "x", operation: "write" },
      () => new Promise<void>((resolve) => (finish = resolve)),
    );
    let released = false;
    const closed = lifecycle.close(async () => {
      released = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(released).toBe(false);
    finish();
    await running;
    await closed;
    expect(released).toBe(true);
    await expect(lifecycle.run({ backend: "x", operation: "read" }, async () => 1)).rejects.toBeInstanceOf(
      BackendClosedError,
    );
  });
});

describe("a listenError listener that throws", () => {
  it("neither crashes the process nor hides the caller's error: it becomes a process warning", async () => {
    const { listenError, PersistSignalAdapter, PersistMemory } = await import("../src/index.js");
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on("warning", onWarning);
    const stop = listenError(() => {
      throw new Error("the logger is broken");
    });
    try {
      const signals = new PersistSignalAdapter(new PersistMemory());
      await expect(signals.waitForInit("", "momentum")).rejects.toBeInstanceOf(Error);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(warnings.map((warning) => warning.message)).toContain(
        "a listenError listener threw: the logger is broken",
      );
    } finally {
      stop();
      process.off("warning", onWarning);
    }
  });
});

describe("the adapter names the backend of a foreign error", () => {
  it("a plain Error from a custom backend is reported with the backend's name, not 'adapter'", async () => {
    const { PersistSignalAdapter } = await import("../src/index.js");
    const custom = {
      name: "my-store",
      writeSignalData: async () => {},
      readSignalData: async () => {
        throw new Error("disk on fire");
      },
      deleteSignalData: async () => {},
    };
    const signals = new PersistSignalAdapter(custom);
    const error = await signals.waitForInit("BTC/USDT", "momentum").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PersistError);
    expect((error as PersistError).backend).toBe("my-store");
    expect((error as PersistError).message).toContain("[my-store] init");
  });
});
