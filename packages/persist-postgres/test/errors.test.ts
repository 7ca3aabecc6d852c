import { BackendUnavailableError, InvalidOptionError, InvalidSignalError, PersistError } from "@persist-kit/core";
import { describe, expect, it } from "vitest";
import {
  isQueryTimeout,
  isUnavailableError,
  postgresOutcome,
  TablePreparationError,
  wrapPostgresError,
} from "../src/errors.js";

const context = { backend: "postgres", operation: "write", strategyName: "momentum", symbol: "BTC/USDT" } as const;

function withCode(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

describe("driver errors are classified", () => {
  it.each([
    ["a refused connection", withCode("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED"), "not-applied"],
    ["a reset connection", withCode("read ECONNRESET", "ECONNRESET"), "unknown"],
    ["a connect timeout", withCode("connect ETIMEDOUT", "ETIMEDOUT"), "unknown"],
    ["an unknown host", withCode("getaddrinfo ENOTFOUND db", "ENOTFOUND"), "not-applied"],
    ["pg's dropped connection", new Error("Connection terminated unexpectedly"), "unknown"],
    ["pg's connection timeout", new Error("Connection terminated due to connection timeout"), "unknown"],
    ["the pool's wait for a client", new Error("timeout exceeded when trying to connect"), "not-applied"],
    ["pg's query_timeout", new Error("Query read timeout"), "unknown"],
    [
      "a client broken earlier",
      new Error("Client has encountered a connection error and is not queryable"),
      "not-applied",
    ],
    ["57P01 admin_shutdown", withCode("terminating connection due to administrator command", "57P01"), "unknown"],
    [
      "57P02 crash_shutdown",
      withCode("terminating connection because of crash of another server process", "57P02"),
      "unknown",
    ],
    ["57P03 cannot_connect_now", withCode("the database system is starting up", "57P03"), "not-applied"],
    ["08006 connection_failure", withCode("connection failure", "08006"), "unknown"],
    ["08P01 protocol_violation", withCode("protocol violation", "08P01"), "unknown"],
    ["57014 statement_timeout", withCode("canceling statement due to statement timeout", "57014"), "not-applied"],
    ["55P03 lock_timeout", withCode("canceling statement due to lock timeout", "55P03"), "not-applied"],
    ["53300 too_many_connections", withCode("sorry, too many clients already", "53300"), "not-applied"],
    ["25006 on a standby", withCode("cannot execute INSERT in a read-only transaction", "25006"), "not-applied"],
    [
      "an AggregateError of refused addresses (localhost)",
      new AggregateError([withCode("connect ECONNREFUSED ::1:5432", "ECONNREFUSED")], ""),
      "not-applied",
    ],
    [
      "a refused connection while preparing the tables",
      new TablePreparationError('"public"."t"', withCode("connect ECONNREFUSED", "ECONNREFUSED")),
      "not-applied",
    ],
  ])("%s is BackendUnavailableError, outcome %s", (_, error, outcome) => {
    expect(isUnavailableError(error)).toBe(true);
    expect(postgresOutcome(error)).toBe(outcome);
    const wrapped = wrapPostgresError(error, context);
    expect(wrapped).toBeInstanceOf(BackendUnavailableError);
    expect(wrapped.outcome).toBe(outcome);
    expect(wrapped.cause).toBe(error);
    expect(wrapped.message).toMatch(/^\[postgres\] write "momentum"\/"BTC\/USDT": .+PostgreSQL is unavailable/);
  });

  it.each([
    ["a syntax error", withCode('syntax error at or near "x"', "42601")],
    ["a missing privilege", withCode("permission denied for table persist_records", "42501")],
    ["a unique violation", withCode("duplicate key value violates unique constraint", "23505")],
    ["a deadlock, rolled back", withCode("deadlock detected", "40P01")],
  ])("%s is a plain PersistError naming its SQLSTATE; the statement rolled back, so not applied", (_, error) => {
    expect(isUnavailableError(error)).toBe(false);
    const wrapped = wrapPostgresError(error, context);
    expect(wrapped.constructor).toBe(PersistError);
    expect(wrapped.cause).toBe(error);
    expect(wrapped.outcome).toBe("not-applied");
    expect(wrapped.message).toContain(`SQLSTATE ${(error as Error & { code: string }).code}`);
  });

  it("only pg's own query_timeout is a query timeout: the statement was sent, its client gave up", () => {
    expect(isQueryTimeout(new Error("Query read timeout"))).toBe(true);
    expect(isQueryTimeout(withCode("Query read timeout", "57014"))).toBe(false);
    expect(isQueryTimeout(new Error("timeout exceeded when trying to connect"))).toBe(false);
    expect(isQueryTimeout("Query read timeout")).toBe(false);
  });

  it("an error without a SQLSTATE leaves the outcome of a change unknown, a read's not applied", () => {
    const error = new Error("something else");
    expect(wrapPostgresError(error, context).outcome).toBe("unknown");
    expect(wrapPostgresError(error, { ...context, operation: "read" }).outcome).toBe("not-applied");
  });

  it("jsonb's refusal of U+0000 or a lone surrogate on a write: InvalidSignalError for a signal key, InvalidOptionError for records and batches", () => {
    const record = { backend: "postgres", operation: "write", record: { namespace: "risk", parts: ["a"] } } as const;
    for (const code of ["22P05", "22P02"]) {
      const error = withCode("unsupported Unicode escape sequence", code);
      expect(wrapPostgresError(error, context)).toBeInstanceOf(InvalidSignalError);
      expect(wrapPostgresError(error, { backend: "postgres", operation: "writeMany" })).toBeInstanceOf(
        InvalidOptionError,
      );
      expect(wrapPostgresError(error, record)).toBeInstanceOf(InvalidOptionError);
      expect(wrapPostgresError(error, context).outcome).toBe("not-applied");
      expect(wrapPostgresError(error, { ...context, operation: "read" }).constructor).toBe(PersistError);
    }
  });

  it("a PersistError passes through unchanged", () => {
    const error = new PersistError("already wrapped", context);
    expect(wrapPostgresError(error, context)).toBe(error);
  });

  it("credentials in a driver message are redacted", () => {
    const error = new Error('invalid URL "postgres://trader:hunter2@db:5432/x"');
    expect(wrapPostgresError(error, context).message).not.toContain("hunter2");
  });
});
