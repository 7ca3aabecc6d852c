import { createServer, type Socket } from "node:net";
import { makeSignalRow } from "@persist-kit/contract";
import {
  BackendUnavailableError,
  createPersist,
  InvalidOptionError,
  InvalidSignalError,
  PersistError,
  type SignalEntry,
} from "@persist-kit/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PersistPostgres, type PersistPostgresOptions } from "../src/index.js";
import { adminPool, dropSchemas, testDatabaseUrl, uniqueName } from "./postgres-test-env.js";

const schema = uniqueName("pk_capabilities");
let url = "";
let admin: pg.Pool | undefined;
let tables = 0;

beforeAll(async () => {
  url = await testDatabaseUrl();
  admin = adminPool(url);
});

afterAll(async () => {
  if (admin === undefined) return;
  await dropSchemas(admin, [schema]);
  await admin.end();
});

async function withBackend(body: (persist: PersistPostgres) => Promise<void>, options: PersistPostgresOptions = {}) {
  const persist = new PersistPostgres({ connectionString: url, schema, table: `signals_${++tables}`, ...options });
  try {
    await body(persist);
  } finally {
    await persist.close();
  }
}

async function storedRows(persist: PersistPostgres): Promise<number> {
  const result = await admin?.query(`SELECT count(*)::int AS count FROM ${persist.tableName}`);
  return result?.rows[0].count;
}

async function listKeys(persist: PersistPostgres) {
  const keys = [];
  for await (const key of persist.keys()) keys.push(key);
  return keys;
}

const entry = (symbol: string, sequence: number, extra: Record<string, unknown> = {}): SignalEntry => ({
  symbol,
  strategyName: "batch",
  row: makeSignalRow(sequence, extra),
});

describe("writeMany is one transaction", () => {
  it("stores every entry", () =>
    withBackend(async (persist) => {
      await persist.writeMany([entry("BTC/USDT", 1), entry("ETH/USDT", 2), entry("SOL/USDT", 3)]);
      expect(await persist.readSignalData("ETH/USDT", "batch")).toEqual(makeSignalRow(2));
      expect(await storedRows(persist)).toBe(3);
    }));

  it("stores none when the server refuses one entry in the middle", () =>
    withBackend(async (persist) => {
      await persist.writeSignalData("BTC/USDT", "batch", makeSignalRow(1));
      // Core passes any text to the record store; the server refuses the third as JSON.
      const signal = (symbol: string, sequence: number) => ({
        key: { namespace: "signal", parts: ["batch", symbol] },
        json: JSON.stringify(makeSignalRow(sequence)),
      });
      const batch = [
        signal("BTC/USDT", 2),
        signal("ETH/USDT", 3),
        { ...signal("XRP/USDT", 4), json: "{" },
        signal("SOL/USDT", 5),
      ];
      await expect(persist.records.writeMany(batch)).rejects.toMatchObject({ outcome: "not-applied" });
      expect(await persist.readSignalData("BTC/USDT", "batch")).toEqual(makeSignalRow(1));
      expect(await storedRows(persist)).toBe(1);
      // The connection was rolled back and reused, not left inside the failed transaction.
      await persist.writeMany([entry("ETH/USDT", 6)]);
      expect(await storedRows(persist)).toBe(2);
    }));

  it("refuses an invalid row before any I/O, and an empty batch does nothing", () =>
    withBackend(async (persist) => {
      const invalid = { ...entry("ETH/USDT", 2), row: makeSignalRow(2, { priceOpen: Number.NaN }) };
      await expect(persist.writeMany([entry("BTC/USDT", 1), invalid])).rejects.toThrow(InvalidSignalError);
      await persist.writeMany([]);
      expect(await listKeys(persist)).toEqual([]);
    }));

  it("the last entry for a key repeated in one batch wins", () =>
    withBackend(async (persist) => {
      await persist.writeMany([entry("BTC/USDT", 1), entry("BTC/USDT", 2)]);
      expect(await persist.readSignalData("BTC/USDT", "batch")).toEqual(makeSignalRow(2));
    }));
});

describe("strings JSON can spell are kept exactly", () => {
  it("U+0000 and lone surrogates in a row read back as written", () =>
    withBackend(async (persist) => {
      for (const note of ["a\u0000b", "\ud800", "x\udc00"]) {
        const row = makeSignalRow(1, { note });
        await persist.writeSignalData("BTC/USDT", "strings", row);
        expect(await persist.readSignalData("BTC/USDT", "strings")).toEqual(row);
      }
    }));
});

describe("keys()", () => {
  it("lists more keys than one page, each once", () =>
    withBackend(async (persist) => {
      const symbols = Array.from({ length: 2_345 }, (_, index) => `COIN${index}/USDT`);
      await persist.writeMany(symbols.map((symbol, index) => entry(symbol, index)));
      const listed = await listKeys(persist);
      expect(listed).toHaveLength(symbols.length);
      expect(new Set(listed.map((key) => key.symbol))).toEqual(new Set(symbols));
    }));
});

describe("TTL", () => {
  it("expiry uses the server clock: a row reads null once expires_at has passed, and deleteExpired() removes it", () =>
    withBackend(
      async (persist) => {
        await persist.writeSignalData("BTC/USDT", "ttl", makeSignalRow(1));
        const stored = await admin?.query(
          `SELECT round(extract(epoch FROM expires_at - updated_at) * 1000)::int AS ttl FROM ${persist.tableName}`,
        );
        expect(stored?.rows[0].ttl).toBe(300);
        expect(await persist.readSignalData("BTC/USDT", "ttl")).toEqual(makeSignalRow(1));
        // Expire it in the store itself, so no sleep is needed.
        await admin?.query(`UPDATE ${persist.tableName} SET expires_at = now() - interval '1 millisecond'`);
        expect(await persist.readSignalData("BTC/USDT", "ttl")).toBeNull();
        expect(await listKeys(persist)).toEqual([]);
        expect(await storedRows(persist)).toBe(1);
        expect(await persist.deleteExpired()).toBe(1);
        expect(await storedRows(persist)).toBe(0);
      },
      { ttlMs: 300 },
    ));

  it("overwriting an expired row starts a new row: created_at is reset", () =>
    withBackend(
      async (persist) => {
        await persist.writeSignalData("BTC/USDT", "ttl", makeSignalRow(1));
        await admin?.query(`UPDATE ${persist.tableName} SET created_at = now() - interval '1 hour'`);
        await persist.writeSignalData("BTC/USDT", "ttl", makeSignalRow(2));
        const kept = await admin?.query(
          `SELECT created_at < now() - interval '1 minute' AS old FROM ${persist.tableName}`,
        );
        expect(kept?.rows[0].old).toBe(true);
        await admin?.query(`UPDATE ${persist.tableName} SET expires_at = now() - interval '1 second'`);
        await persist.writeSignalData("BTC/USDT", "ttl", makeSignalRow(3));
        const reset = await admin?.query(`SELECT created_at = updated_at AS fresh FROM ${persist.tableName}`);
        expect(reset?.rows[0].fresh).toBe(true);
        expect(await persist.readSignalData("BTC/USDT", "ttl")).toEqual(makeSignalRow(3));
      },
      { ttlMs: 60_000 },
    ));

  it("without ttlMs expires_at stays NULL", () =>
    withBackend(async (persist) => {
      await persist.writeSignalData("BTC/USDT", "ttl", makeSignalRow(1));
      const stored = await admin?.query(`SELECT expires_at FROM ${persist.tableName}`);
      expect(stored?.rows[0].expires_at).toBeNull();
    }));
});

describe("one instance keeps call order per key", () => {
  it("a write followed at once by a delete, without awaiting, ends deleted", () =>
    withBackend(async (persist) => {
      for (let round = 0; round < 20; round++) {
        const write = persist.writeSignalData("BTC/USDT", "order", makeSignalRow(round));
        const remove = persist.deleteSignalData("BTC/USDT", "order");
        const read = persist.readSignalData("BTC/USDT", "order");
        await Promise.all([write, remove]);
        expect(await read).toBeNull();
      }
    }));
});

describe("lifecycle", () => {
  it("createPersist builds it from a postgres:// URL", async () => {
    const persist = await createPersist(url, { importModule: (name) => import(name) });
    try {
      expect(persist.name).toBe("postgres");
      await persist.ping?.();
    } finally {
      await persist.close?.();
    }
  });

  it("close() waits for running operations; afterwards operations reject", async () => {
    const persist = new PersistPostgres({ connectionString: url, schema, table: `signals_${++tables}` });
    const write = persist.writeSignalData("BTC/USDT", "close", makeSignalRow(1));
    await persist.close();
    await expect(write).resolves.toBeUndefined();
    await expect(persist.readSignalData("BTC/USDT", "close")).rejects.toThrow(/closed/);
    await expect(persist.close()).resolves.toBeUndefined();
  });

  it("a pool given in the options is never ended", async () => {
    const { Pool } = (await import("pg")).default;
    const pool = new Pool({ connectionString: url });
    try {
      const persist = new PersistPostgres({ pool, schema, table: `signals_${++tables}` });
      await persist.writeSignalData("BTC/USDT", "pool", makeSignalRow(1));
      await persist.close();
      expect(pool.listenerCount("error")).toBe(0);
      expect((await pool.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it("an idle connection closed by the server neither crashes the process nor breaks the next operation", () => {
    const applicationName = `idle_${process.pid}`;
    return withBackend(
      async (persist) => {
        await persist.writeSignalData("BTC/USDT", "idle", makeSignalRow(1));
        const terminated = await admin?.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
          [applicationName],
        );
        expect(terminated?.rowCount).toBeGreaterThan(0);
        // Let the pool see the closed sockets (its 'error' events) before the next operation.
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(await persist.readSignalData("BTC/USDT", "idle")).toEqual(makeSignalRow(1));
      },
      { poolConfig: { application_name: applicationName } },
    );
  });

  it("rejects options that are not positive whole milliseconds, and pool with connectionString", () => {
    for (const option of [
      "connectionTimeoutMillis",
      "statementTimeoutMillis",
      "lockTimeoutMillis",
      "queryTimeoutMillis",
      "ttlMs",
    ]) {
      for (const value of [0, -1, 1.5, Number.NaN]) {
        expect(() => new PersistPostgres({ connectionString: url, [option]: value }), `${option} ${value}`).toThrow(
          PersistError,
        );
      }
    }
    for (const value of [0, -1, 1.5, Number.NaN]) {
      expect(() => new PersistPostgres({ connectionString: url, queryTimeoutMillis: value })).toThrow(
        InvalidOptionError,
      );
    }
    expect(() => new PersistPostgres({ connectionString: url, pool: {} as pg.Pool })).toThrow(InvalidOptionError);
  });

  it("the server's timeouts must end a statement before the client gives up: statement below query, lock at most statement", () => {
    const refused = [
      { queryTimeoutMillis: 1_000, statementTimeoutMillis: 1_000 },
      { statementTimeoutMillis: 15_000 },
      { statementTimeoutMillis: 500, lockTimeoutMillis: 501 },
      { queryTimeoutMillis: 300, lockTimeoutMillis: 250 },
    ];
    for (const options of refused) {
      expect(() => new PersistPostgres({ connectionString: url, ...options }), JSON.stringify(options)).toThrow(
        InvalidOptionError,
      );
    }
    const taken = [
      {},
      { queryTimeoutMillis: 2 },
      { queryTimeoutMillis: 300 },
      { statementTimeoutMillis: 14_999, lockTimeoutMillis: 14_999 },
      { queryTimeoutMillis: 1_000, statementTimeoutMillis: 999 },
    ];
    for (const options of taken) {
      expect(() => new PersistPostgres({ connectionString: url, ...options }), JSON.stringify(options)).not.toThrow();
    }
  });
});

/** Resolves with how long `operation` took to reject; fails unless it rejected with BackendUnavailableError. */
async function unavailableAfter(operation: Promise<unknown>): Promise<number> {
  const started = performance.now();
  const outcome = await operation.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(BackendUnavailableError);
  return performance.now() - started;
}

describe("a server that does not answer fails operations within the configured time", () => {
  it("a server that accepts connections but never replies: connectionTimeoutMillis", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    const persist = new PersistPostgres({
      connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`,
      connectionTimeoutMillis: 500,
    });
    try {
      const elapsed = await unavailableAfter(persist.readSignalData("BTC/USDT", "silent"));
      expect(elapsed).toBeGreaterThanOrEqual(450);
      expect(elapsed).toBeLessThan(2_000);
    } finally {
      await persist.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  async function withTableLocked(persist: PersistPostgres, body: () => Promise<void>): Promise<void> {
    await persist.ping(); // creates the table
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    try {
      await locker.query("BEGIN");
      await locker.query(`LOCK TABLE ${persist.tableName} IN ACCESS EXCLUSIVE MODE`);
      await body();
    } finally {
      await locker.query("ROLLBACK");
      await locker.end();
    }
  }

  it("a statement stuck behind a lock: statementTimeoutMillis, then the instance works again", () =>
    withBackend(
      async (persist) => {
        await withTableLocked(persist, async () => {
          const elapsed = await unavailableAfter(persist.writeSignalData("BTC/USDT", "stuck", makeSignalRow(1)));
          expect(elapsed).toBeLessThan(2_000);
        });
        await persist.writeSignalData("BTC/USDT", "stuck", makeSignalRow(2));
        expect(await persist.readSignalData("BTC/USDT", "stuck")).toEqual(makeSignalRow(2));
      },
      { statementTimeoutMillis: 500 },
    ));

  it("no reply to a statement: queryTimeoutMillis, also with a pool given in the options", async () => {
    const pool = new pg.Pool({ connectionString: url });
    const persist = new PersistPostgres({ pool, schema, table: `signals_${++tables}`, queryTimeoutMillis: 500 });
    try {
      await withTableLocked(persist, async () => {
        const elapsed = await unavailableAfter(persist.readSignalData("BTC/USDT", "stuck"));
        expect(elapsed).toBeLessThan(2_000);
      });
      expect(await persist.readSignalData("BTC/USDT", "stuck")).toBeNull();
    } finally {
      await persist.close();
      await pool.end();
    }
  });
});
