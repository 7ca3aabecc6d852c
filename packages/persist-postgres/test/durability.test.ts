// The server settings that can lose acknowledged writes, checked on each new connection: a warning
// through core's listenWarning, NotDurableError with requireDurable, describeDurability(). On a
// private server, so that roles and server settings can be changed.
import { makeSignalRow } from "@persist-kit/contract";
import { listenWarning, NotDurableError, type PersistWarning } from "@persist-kit/core";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PersistPostgres, type PersistPostgresOptions } from "../src/index.js";
import { adminPool, dropSchemas, testDatabaseUrl, uniqueName } from "./postgres-test-env.js";
import { PrivatePostgres } from "./private-postgres.js";

let server: PrivatePostgres | undefined;
let admin: pg.Client;
let address = "";
const stops: Array<() => void> = [];
const warnings: PersistWarning[] = [];

beforeAll(async () => {
  server = await PrivatePostgres.start();
  address = new URL(server.url).host;
  admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  // Roles as a deployment would have them; each may create its own schema.
  for (const [role, setting] of [
    ["live_bot", undefined],
    ["backtest_bot", "synchronous_commit = off"],
    ["local_bot", "synchronous_commit = local"],
    ["later_bot", undefined],
  ] as const) {
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`GRANT CREATE ON DATABASE postgres TO ${role}`);
    if (setting !== undefined) await admin.query(`ALTER ROLE ${role} SET ${setting}`);
  }
}, 120_000);

afterAll(async () => {
  await admin?.end();
  await server?.destroy();
}, 120_000);

afterEach(() => {
  for (const stop of stops.splice(0)) stop();
  warnings.length = 0;
});

/** The warnings reported from now on, until the end of the test; clears those seen so far. */
function listen(): PersistWarning[] {
  if (stops.length === 0) stops.push(listenWarning((warning) => warnings.push(warning)));
  warnings.length = 0;
  return warnings;
}

function urlAs(role: string): string {
  if (server === undefined) throw new Error("the private server did not start");
  const url = new URL(server.url);
  url.username = role;
  return url.toString();
}

async function withBackend(
  role: string,
  body: (persist: PersistPostgres) => Promise<void>,
  options: PersistPostgresOptions = {},
): Promise<void> {
  const persist = new PersistPostgres({ connectionString: urlAs(role), schema: uniqueName(role), ...options });
  try {
    await body(persist);
  } finally {
    await persist.close();
  }
}

// Server settings that take effect on reload, for the sessions that start afterwards.
async function alterSystem(statements: string[]): Promise<void> {
  for (const statement of statements) await admin.query(statement);
  await admin.query("SELECT pg_reload_conf()");
  // The postmaster reads the file when it gets the signal; new sessions start with it.
  await new Promise((resolve) => setTimeout(resolve, 300));
}

describe("the server's defaults give no warning", () => {
  it("fsync, full_page_writes and synchronous_commit on: no warning, and describeDurability() says crash-safe", () =>
    withBackend("live_bot", async (persist) => {
      const seen = listen();
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      expect(await persist.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(1));
      expect(seen).toEqual([]);
      expect(await persist.describeDurability()).toEqual({
        servers: [
          {
            address,
            version: expect.stringMatching(/^\d+/),
            synchronousCommit: "on",
            synchronousStandbyNames: "",
            fsync: true,
            fullPageWrites: true,
          },
        ],
        crashSafe: true,
        warnings: [],
      });
    }));

  it("the shared test server gives none either", async () => {
    const seen = listen();
    const url = await testDatabaseUrl();
    const schema = uniqueName("pk_durable");
    const persist = new PersistPostgres({ connectionString: url, schema });
    const shared = adminPool(url);
    try {
      await persist.ping();
      expect(seen).toEqual([]);
      expect((await persist.records.describeDurability()).crashSafe).toBe(true);
    } finally {
      await persist.close();
      await dropSchemas(shared, [schema]);
      await shared.end();
    }
  });
});

describe("settings that can lose acknowledged writes are reported on first use", () => {
  it("a role with synchronous_commit = off: one durability warning naming the server and the setting", () =>
    withBackend("backtest_bot", async (persist) => {
      const seen = listen();
      for (let sequence = 1; sequence <= 3; sequence++) {
        await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(sequence));
      }
      expect(seen).toEqual([
        {
          backend: "postgres",
          kind: "durability",
          message: expect.stringContaining(`${address}: synchronous_commit is off`),
          details: { address, setting: "synchronous_commit", value: "off" },
        },
      ]);
      const report = await persist.describeDurability();
      expect(report).toMatchObject({ servers: [{ address, synchronousCommit: "off" }], crashSafe: false });
      expect(report.warnings).toEqual([seen[0]?.message]);
      expect(seen).toHaveLength(1); // describeDurability() answers; it does not warn again
    }));

  it("a setting given per session (startup options of the pool) is seen too", () =>
    withBackend(
      "live_bot",
      async (persist) => {
        const seen = listen();
        await persist.ping();
        expect(seen.map((warning) => warning.details?.setting)).toEqual(["synchronous_commit"]);
      },
      { poolConfig: { options: "-c synchronous_commit=off" } },
    ));

  it("fsync = off and full_page_writes = off on the server: each is reported", async () => {
    await alterSystem(["ALTER SYSTEM SET fsync = off", "ALTER SYSTEM SET full_page_writes = off"]);
    try {
      await withBackend("live_bot", async (persist) => {
        const seen = listen();
        await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
        expect(seen.map((warning) => warning.details)).toEqual([
          { address, setting: "fsync", value: "off" },
          { address, setting: "full_page_writes", value: "off" },
        ]);
        const report = await persist.describeDurability();
        expect(report).toMatchObject({ crashSafe: false, servers: [{ fsync: false, fullPageWrites: false }] });
        expect(report.warnings).toHaveLength(2);
      });
    } finally {
      await alterSystem(["ALTER SYSTEM RESET fsync", "ALTER SYSTEM RESET full_page_writes"]);
    }
  });

  it("synchronous_commit = local is reported when synchronous standbys are configured, not without", async () => {
    await withBackend("local_bot", async (persist) => {
      const seen = listen();
      await persist.ping();
      expect(seen).toEqual([]); // without standbys, local is what on means
    });
    // local commits do not wait for the standby, so this role's writes still go through.
    await alterSystem(["ALTER SYSTEM SET synchronous_standby_names = 'standby_a'"]);
    try {
      await withBackend("local_bot", async (persist) => {
        const seen = listen();
        await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
        expect(seen.map((warning) => warning.details)).toEqual([
          { address, setting: "synchronous_commit", value: "local" },
        ]);
        expect(seen[0]?.message).toMatch(/standby_a/);
      });
    } finally {
      await alterSystem(["ALTER SYSTEM RESET synchronous_standby_names"]);
    }
  });

  it("a connection opened after a reconnect is checked again", () =>
    withBackend("later_bot", async (persist) => {
      const seen = listen();
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      expect(seen).toEqual([]);
      await admin.query("ALTER ROLE later_bot SET synchronous_commit = off");
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'later_bot'");
      // The pool drops its idle connection once it sees the server close it.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(2));
      expect(seen.map((warning) => warning.details)).toEqual([
        { address, setting: "synchronous_commit", value: "off" },
      ]);
    }));
});

describe("requireDurable refuses such settings", () => {
  it("every operation rejects with NotDurableError, not applied, and nothing is written", () =>
    withBackend(
      "backtest_bot",
      async (persist) => {
        const seen = listen();
        const write = persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
        await expect(write).rejects.toBeInstanceOf(NotDurableError);
        await expect(write).rejects.toMatchObject({
          code: "PERSIST_NOT_DURABLE",
          outcome: "not-applied",
          strategyName: "momentum",
          symbol: "BTC/USDT",
          message: expect.stringContaining("synchronous_commit is off"),
        });
        const entry = { symbol: "ETH/USDT", strategyName: "momentum", row: makeSignalRow(2) };
        await expect(persist.writeMany([entry])).rejects.toBeInstanceOf(NotDurableError);
        await expect(persist.deleteSignalData("BTC/USDT", "momentum")).rejects.toBeInstanceOf(NotDurableError);
        await expect(persist.readSignalData("BTC/USDT", "momentum")).rejects.toBeInstanceOf(NotDurableError);
        await expect(persist.ping()).rejects.toBeInstanceOf(NotDurableError);
        // Refused before anything reached the tables: they were not even created.
        const { rows } = await admin.query("SELECT to_regclass($1) AS table", [persist.tableName]);
        expect(rows).toEqual([{ table: null }]);
        // Asking is still allowed; the setting was reported once, as without requireDurable.
        expect((await persist.describeDurability()).crashSafe).toBe(false);
        expect(seen.map((warning) => warning.details?.setting)).toEqual(["synchronous_commit"]);
      },
      { requireDurable: true },
    ));

  it("on durable settings requireDurable changes nothing", () =>
    withBackend(
      "live_bot",
      async (persist) => {
        await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
        expect(await persist.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(1));
      },
      { requireDurable: true },
    ));

  it("refuses anything but true or false", () => {
    expect(
      () => new PersistPostgres({ connectionString: urlAs("live_bot"), requireDurable: "yes" as unknown as boolean }),
    ).toThrow(/requireDurable/);
  });
});
