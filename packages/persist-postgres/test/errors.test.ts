import { BackendUnavailableError, InvalidSignalError, PersistError } from "@persist-kit/core";
import { describe, expect, it } from "vitest";
import { isUnavailableError, toPersistError } from "../src/errors.js";

const context = { backend: "postgres", operation: "read", strategyName: "momentum", symbol: "BTC/USDT" } as const;

function withCode(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

describe("driver errors are classified", () => {
  it.each([
    ["a refused connection", withCode("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED")],
    ["a reset connection", withCode("read ECONNRESET", "ECONNRESET")],
    ["a connect timeout", withCode("connect ETIMEDOUT", "ETIMEDOUT")],
    ["an unknown host", withCode("getaddrinfo ENOTFOUND db", "ENOTFOUND")],
    ["pg's dropped connection", new Error("Connection terminated unexpectedly")],
    ["pg's connection timeout", new Error("Connection terminated due to connection timeout")],
    ["the pool's wait for a client", new Error("timeout exceeded when trying to connect")],
    ["pg's query_timeout", new Error("Query read timeout")],
    ["a client broken earlier", new Error("Client has encountered a connection error and is not queryable")],
    ["57P01 admin_shutdown", withCode("terminating connection due to administrator command", "57P01")],
    ["57P02 crash_shutdown", withCode("terminating connection because of crash of another server process", "57P02")],
    ["57P03 cannot_connect_now", withCode("the database system is starting up", "57P03")],
    ["08006 connection_failure", withCode("connection failure", "08006")],
    ["08P01 protocol_violation", withCode("protocol violation", "08P01")],
    ["57014 statement_timeout", withCode("canceling statement due to statement timeout", "57014")],
    ["53300 too_many_connections", withCode("sorry, too many clients already", "53300")],
    ["25006 on a standby", withCode("cannot execute INSERT in a read-only transaction", "25006")],
    [
      "an AggregateError of refused addresses (localhost)",
      new AggregateError([withCode("connect ECONNREFUSED ::1:5432", "ECONNREFUSED")], ""),
    ],
  ])("%s is BackendUnavailableError", (_, error) => {
    expect(isUnavailableError(error)).toBe(true);
    const wrapped = toPersistError(error, context);
    expect(wrapped).toBeInstanceOf(BackendUnavailableError);
    expect(wrapped.cause).toBe(error);
    expect(wrapped.message).toMatch(/^\[postgres\] read "momentum"\/"BTC\/USDT": PostgreSQL is unavailable: ./);
  });

  it.each([
    ["a syntax error", withCode('syntax error at or near "x"', "42601")],
    ["a missing privilege", withCode("permission denied for table persist_signals", "42501")],
    ["a unique violation", withCode("duplicate key value violates unique constraint", "23505")],
    ["a plain Error", new Error("something else")],
  ])("%s is a plain PersistError naming its SQLSTATE", (_, error) => {
    expect(isUnavailableError(error)).toBe(false);
    const wrapped = toPersistError(error, context);
    expect(wrapped.constructor).toBe(PersistError);
    expect(wrapped.cause).toBe(error);
    const code = (error as { code?: string }).code;
    if (code !== undefined) expect(wrapped.message).toContain(`SQLSTATE ${code}`);
  });

  it("jsonb's refusal of U+0000 or a lone surrogate on a write is InvalidSignalError", () => {
    for (const code of ["22P05", "22P02"]) {
      const error = withCode("unsupported Unicode escape sequence", code);
      expect(toPersistError(error, { ...context, operation: "write" })).toBeInstanceOf(InvalidSignalError);
      expect(toPersistError(error, { ...context, operation: "writeMany" })).toBeInstanceOf(InvalidSignalError);
      expect(toPersistError(error, context).constructor).toBe(PersistError);
    }
  });

  it("a PersistError passes through unchanged", () => {
    const error = new PersistError("already wrapped", context);
    expect(toPersistError(error, { ...context, operation: "write" })).toBe(error);
  });

  it("credentials in a driver message are redacted", () => {
    const error = new Error('invalid URL "postgres://trader:hunter2@db:5432/x"');
    expect(toPersistError(error, context).message).not.toContain("hunter2");
  });
});
