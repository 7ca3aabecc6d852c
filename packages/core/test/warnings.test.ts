import { afterEach, describe, expect, it, vi } from "vitest";
import { listenWarning, NotDurableError, PersistError, reportWarning } from "../src/index.js";

const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
  vi.restoreAllMocks();
});

describe("warnings", () => {
  it("reach listenWarning subscribers, apart from errors, with credentials redacted", () => {
    const seen: unknown[] = [];
    stops.push(listenWarning((warning) => seen.push(warning)));
    const emitted = vi.spyOn(process, "emitWarning");
    reportWarning({ backend: "redis", kind: "durability", message: "redis://:hunter2@db:6379 has appendonly no" });
    expect(seen).toEqual([{ backend: "redis", kind: "durability", message: "redis://***@db:6379 has appendonly no" }]);
    expect(emitted).not.toHaveBeenCalled();
  });

  it("become a process warning when nobody listens, so they are never silent", () => {
    const emitted = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    reportWarning({ backend: "postgres", kind: "durability", message: "synchronous_commit is off" });
    expect(emitted).toHaveBeenCalledWith("[postgres] synchronous_commit is off", {
      type: "PersistWarning",
      code: "PERSIST_DURABILITY",
    });
  });

  it("a throwing listener never throws into the backend; it becomes a process warning", () => {
    const emitted = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    stops.push(
      listenWarning(() => {
        throw new Error("broken logger");
      }),
    );
    expect(() => reportWarning({ backend: "mongo", kind: "capability", message: "no TTL index" })).not.toThrow();
    expect(emitted).toHaveBeenCalledTimes(1);
  });

  it("NotDurableError is a PersistError, not applied", () => {
    const error = new NotDurableError("appendonly is off", { backend: "redis", operation: "write" });
    expect(error).toBeInstanceOf(PersistError);
    expect(error).toMatchObject({ code: "PERSIST_NOT_DURABLE", outcome: "not-applied" });
  });
});
