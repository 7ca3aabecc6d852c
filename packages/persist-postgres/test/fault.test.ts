// Faults after which a write has failed but its statement may still be on the server: a stopped
// server process, a row lock held by another session, a killed postmaster. Each trial writes row A
// through the adapter, lets the fault fail it, heals the fault, deletes the key through the
// adapter and reads the key directly: a rejected write must never land later. The adapter fences
// by revision, so the stopped process is also tried straight on the backend, where only the
// backend keeps the write from landing. On a private server, since the trials stop and kill its
// processes.
import { makeSignalRow, makeTrialRow } from "@persist-kit/contract";
import {
  BackendUnavailableError,
  type ISignalRow,
  PersistError,
  type PersistOutcome,
  PersistSignalAdapter,
} from "@persist-kit/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PersistPostgres, type PersistPostgresOptions } from "../src/index.js";
import { PrivatePostgres } from "./private-postgres.js";

const TRIALS = faultTrials();
const TRIALS_TIMEOUT_MS = 30_000 + TRIALS * 3_000;
const STRATEGY = "fault";
// The adapter's deadline; the store gives up before it (queryTimeoutMillis) and the server before
// the store (statement and lock timeouts), so each layer's answer reaches the one above in time.
const ADAPTER_TIMEOUT_MS = 500;
const STORE_TIMEOUTS = {
  connectionTimeoutMillis: 1_000,
  queryTimeoutMillis: 300,
  statementTimeoutMillis: 200,
  lockTimeoutMillis: 100,
} as const;

/** Trials per fault: `PERSIST_KIT_FAULT_TRIALS`, else 5 in CI and 50 elsewhere. */
function faultTrials(): number {
  const fromEnvironment = Number(process.env.PERSIST_KIT_FAULT_TRIALS);
  if (Number.isSafeInteger(fromEnvironment) && fromEnvironment > 0) return fromEnvironment;
  return process.env.CI ? 5 : 50;
}

let server: PrivatePostgres | undefined;
let tables = 0;

beforeAll(async () => {
  server = await PrivatePostgres.start();
}, 120_000);

afterAll(async () => {
  await server?.destroy();
}, 120_000);

function privateServer(): PrivatePostgres {
  if (server === undefined) throw new Error("the private server did not start");
  return server;
}

/** An adapter over a backend whose pool has one connection, named so the test finds its server process. */
interface Subject {
  readonly persist: PersistPostgres;
  readonly adapter: PersistSignalAdapter;
  readonly applicationName: string;
  close(): Promise<void>;
}

/** The backend's own pool: the server's statement and lock timeouts are set on its connections. */
function ownPoolSubject(): Subject {
  const applicationName = `fault-own-${++tables}`;
  const persist = new PersistPostgres({
    connectionString: privateServer().url,
    table: `faults_${tables}`,
    ...STORE_TIMEOUTS,
    poolConfig: { max: 1, application_name: applicationName },
  });
  const adapter = new PersistSignalAdapter(persist, { timeoutMs: ADAPTER_TIMEOUT_MS });
  return {
    persist,
    adapter,
    applicationName,
    close: async () => {
      await adapter.close();
      await persist.close();
    },
  };
}

/** An application's pool without server-side timeouts: only the client's deadline ends a statement. */
function applicationPoolSubject(): Subject {
  const applicationName = `fault-application-${++tables}`;
  const pool = new pg.Pool({ connectionString: privateServer().url, max: 1, application_name: applicationName });
  const persist = new PersistPostgres({
    pool,
    table: `faults_${tables}`,
    queryTimeoutMillis: STORE_TIMEOUTS.queryTimeoutMillis,
    connectionTimeoutMillis: STORE_TIMEOUTS.connectionTimeoutMillis,
  });
  const adapter = new PersistSignalAdapter(persist, { timeoutMs: ADAPTER_TIMEOUT_MS });
  return {
    persist,
    adapter,
    applicationName,
    close: async () => {
      await adapter.close();
      await persist.close();
      await pool.end();
    },
  };
}

/** The calls of one trial: through the adapter, which fences them by revision, or straight to the backend, which does not. */
interface SignalCalls {
  open(symbol: string): Promise<unknown>;
  write(symbol: string, row: ISignalRow): Promise<void>;
  remove(symbol: string): Promise<void>;
}

function throughAdapter({ adapter }: Subject): SignalCalls {
  return {
    open: (symbol) => adapter.waitForInit(symbol, STRATEGY),
    write: (symbol, row) => adapter.setPendingSignal(symbol, STRATEGY, row),
    remove: (symbol) => adapter.deletePendingSignal(symbol, STRATEGY),
  };
}

function throughBackend({ persist }: Subject): SignalCalls {
  return {
    open: (symbol) => persist.readSignalData(symbol, STRATEGY),
    write: (symbol, row) => persist.writeSignalData(symbol, STRATEGY, row),
    remove: (symbol) => persist.deleteSignalData(symbol, STRATEGY),
  };
}

async function withClient<T>(body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: privateServer().url });
  client.on("error", () => {});
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The server process of the subject's one pooled connection. */
async function serverProcessOf(subject: Subject): Promise<number> {
  let pids: number[] = [];
  // A connection closed just before may linger in pg_stat_activity until its process has exited.
  await waitFor(`one server process for ${subject.applicationName}`, async () => {
    const { rows } = await withClient((client) =>
      client.query("SELECT pid FROM pg_stat_activity WHERE application_name = $1", [subject.applicationName]),
    );
    pids = rows.map((row) => row.pid as number);
    return pids.length === 1;
  });
  return pids[0] as number;
}

/** Waits until the server process has exited: its statement has committed or is gone. */
function untilExited(pid: number): Promise<void> {
  return waitFor(`server process ${pid} exits`, async () => {
    const { rowCount } = await withClient((client) =>
      client.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid]),
    );
    return rowCount === 0;
  });
}

/** The key's stored signal, read with a fresh client through the documented view, or null. */
async function storedSignal(persist: PersistPostgres, symbol: string): Promise<Record<string, unknown> | null> {
  const view = persist.records.sql.signalViewName;
  const { rows } = await withClient((client) =>
    client.query(`SELECT signal::text AS signal FROM ${view} WHERE strategy_name = $1 AND symbol = $2`, [
      STRATEGY,
      symbol,
    ]),
  );
  return rows.length === 0 ? null : JSON.parse(rows[0].signal);
}

async function rejection(operation: Promise<unknown>): Promise<PersistError> {
  const outcome = await operation.then(
    () => new Error("the write was acknowledged: the fault did not fail it"),
    (error: unknown) => error,
  );
  if (outcome instanceof PersistError) return outcome;
  throw outcome;
}

async function lockRecordRow(locker: pg.Client, persist: PersistPostgres, symbol: string): Promise<void> {
  await locker.query("BEGIN");
  await locker.query(`SELECT 1 FROM ${persist.tableName} WHERE namespace = 'signal' AND key = $1 FOR UPDATE`, [
    [STRATEGY, symbol],
  ]);
}

/** What one trial saw: the rejected write's outcome, and whether row A was found after the fault. */
interface Trial {
  readonly outcome: PersistOutcome;
  readonly landedLate: boolean;
}

async function runTrials(subject: Subject, trial: (index: number) => Promise<Trial>) {
  const outcomes: PersistOutcome[] = [];
  let lateLandings = 0;
  try {
    for (let index = 0; index < TRIALS; index++) {
      const { outcome, landedLate } = await trial(index);
      outcomes.push(outcome);
      if (landedLate) lateLandings++;
    }
  } finally {
    await subject.close();
  }
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return { outcomes, lateLandings };
}

describe("a rejected write never lands after the fault that failed it", () => {
  async function stoppedProcessTrial(subject: Subject, calls: SignalCalls, index: number): Promise<Trial> {
    const symbol = `STOP${index}/USDT`;
    await calls.open(symbol); // the pool's one connection is open, and idle
    const pid = await serverProcessOf(subject);
    process.kill(pid, "SIGSTOP");
    let failure: PersistError;
    try {
      failure = await rejection(calls.write(symbol, makeTrialRow("A", index)));
      // Deleted while the process that received row A is still stopped: the only order in which
      // row A can land after an acknowledged delete. The delete takes a new connection.
      await calls.remove(symbol);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await untilExited(pid);
    return { outcome: failure.outcome, landedLate: (await storedSignal(subject.persist, symbol)) !== null };
  }

  it(
    `SIGSTOP of the server process serving the connection, through the adapter (${TRIALS} trials): outcome unknown; after a delete and SIGCONT the key is absent`,
    async () => {
      const subject = ownPoolSubject();
      const result = await runTrials(subject, (index) => stoppedProcessTrial(subject, throughAdapter(subject), index));
      expect(result.lateLandings, "late landings").toBe(0);
      expect(result.outcomes).toEqual(Array(TRIALS).fill("unknown"));
    },
    TRIALS_TIMEOUT_MS,
  );

  it(
    `SIGSTOP of the server process serving the connection, straight to the backend, unfenced (${TRIALS} trials): outcome unknown; after a delete and SIGCONT the key is absent`,
    async () => {
      const subject = ownPoolSubject();
      const result = await runTrials(subject, (index) => stoppedProcessTrial(subject, throughBackend(subject), index));
      expect(result.lateLandings, "late landings").toBe(0);
      expect(result.outcomes).toEqual(Array(TRIALS).fill("unknown"));
    },
    TRIALS_TIMEOUT_MS,
  );

  async function lockedRowTrial(subject: Subject, index: number): Promise<Trial> {
    const symbol = `LOCK${index}/USDT`;
    await subject.adapter.setPendingSignal(symbol, STRATEGY, makeTrialRow("before", index));
    const pid = await serverProcessOf(subject);
    const locker = new pg.Client({ connectionString: privateServer().url });
    await locker.connect();
    let failure: PersistError;
    try {
      await lockRecordRow(locker, subject.persist, symbol);
      failure = await rejection(subject.adapter.setPendingSignal(symbol, STRATEGY, makeTrialRow("A", index)));
    } finally {
      await locker.query("ROLLBACK");
      await locker.end();
    }
    await untilExited(pid);
    // Row A here landed after its write was rejected, whatever the outcome said.
    const afterRelease = await storedSignal(subject.persist, symbol);
    await subject.adapter.deletePendingSignal(symbol, STRATEGY);
    const afterDelete = await storedSignal(subject.persist, symbol);
    return { outcome: failure.outcome, landedLate: afterRelease?.writer === "A" || afterDelete !== null };
  }

  it(
    `a row lock held by another session, with the backend's own pool (${TRIALS} trials): the server's lock_timeout ends the write, not applied; the key is absent after the delete`,
    async () => {
      const subject = ownPoolSubject();
      const result = await runTrials(subject, (index) => lockedRowTrial(subject, index));
      expect(result.lateLandings, "late landings").toBe(0);
      expect(result.outcomes).toEqual(Array(TRIALS).fill("not-applied"));
    },
    TRIALS_TIMEOUT_MS,
  );

  it(
    `a row lock held by another session, with an application's pool without server timeouts (${TRIALS} trials): the client's deadline ends the write, outcome unknown; it never lands`,
    async () => {
      const subject = applicationPoolSubject();
      const result = await runTrials(subject, (index) => lockedRowTrial(subject, index));
      expect(result.lateLandings, "late landings").toBe(0);
      expect(result.outcomes).toEqual(Array(TRIALS).fill("unknown"));
    },
    TRIALS_TIMEOUT_MS,
  );

  it(
    `kill -9 of the postmaster, then a restart (${TRIALS} trials): the write rejects, and the key is absent after the delete`,
    async () => {
      const postgres = privateServer();
      const subject = ownPoolSubject();
      const result = await runTrials(subject, async (index) => {
        const symbol = `KILL${index}/USDT`;
        await subject.adapter.waitForInit(symbol, STRATEGY);
        await postgres.killPostmaster();
        let failure: PersistError;
        try {
          failure = await rejection(subject.adapter.setPendingSignal(symbol, STRATEGY, makeTrialRow("A", index)));
        } finally {
          await postgres.startAgain();
        }
        await subject.adapter.deletePendingSignal(symbol, STRATEGY);
        return { outcome: failure.outcome, landedLate: (await storedSignal(subject.persist, symbol)) !== null };
      });
      expect(result.lateLandings, "late landings").toBe(0);
      for (const outcome of result.outcomes) expect(["not-applied", "unknown"]).toContain(outcome);
    },
    TRIALS_TIMEOUT_MS,
  );
});

describe("a statement the server cancels by its own timeout rolled back: not applied", () => {
  async function cancelledWrite(options: PersistPostgresOptions, expectedCode: string): Promise<void> {
    const persist = new PersistPostgres({
      connectionString: privateServer().url,
      table: `faults_${++tables}`,
      ...options,
    });
    const locker = new pg.Client({ connectionString: privateServer().url });
    await locker.connect();
    try {
      await persist.writeSignalData("BTC/USDT", STRATEGY, makeSignalRow(1));
      await persist.writeSignalData("SOL/USDT", STRATEGY, makeSignalRow(2));
      await lockRecordRow(locker, persist, "SOL/USDT");
      const started = performance.now();
      const single = await rejection(persist.writeSignalData("SOL/USDT", STRATEGY, makeSignalRow(3)));
      const elapsed = performance.now() - started;
      // A batch writes its keys in key order: BTC and ETH are written before SOL waits.
      const batch = await rejection(
        persist.writeMany([
          { symbol: "SOL/USDT", strategyName: STRATEGY, row: makeSignalRow(4) },
          { symbol: "BTC/USDT", strategyName: STRATEGY, row: makeSignalRow(5) },
          { symbol: "ETH/USDT", strategyName: STRATEGY, row: makeSignalRow(6) },
        ]),
      );
      await locker.query("ROLLBACK");
      for (const error of [single, batch]) {
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect((error.cause as { code?: string }).code).toBe(expectedCode);
        expect(error.outcome).toBe("not-applied");
      }
      expect(elapsed).toBeLessThan(STORE_TIMEOUTS.queryTimeoutMillis);
      // Nothing waits for the lock any more, so what is stored now is final.
      expect(await storedSignal(persist, "SOL/USDT")).toEqual(makeSignalRow(2));
      expect(await storedSignal(persist, "BTC/USDT")).toEqual(makeSignalRow(1));
      expect(await storedSignal(persist, "ETH/USDT")).toBeNull();
    } finally {
      await locker.end();
      await persist.close();
    }
  }

  it("lock_timeout (55P03), for a write and for a batch", () => cancelledWrite(STORE_TIMEOUTS, "55P03"));

  it("statement_timeout (57014), which fires first when it equals lock_timeout", () =>
    cancelledWrite({ ...STORE_TIMEOUTS, lockTimeoutMillis: STORE_TIMEOUTS.statementTimeoutMillis }, "57014"));
});

describe("a refusal before the statement is sent: not applied", () => {
  it("no free pooled connection within connectionTimeoutMillis; the refused write never lands", async () => {
    const persist = new PersistPostgres({
      connectionString: privateServer().url,
      table: `faults_${++tables}`,
      connectionTimeoutMillis: 100,
      queryTimeoutMillis: 2_000,
      statementTimeoutMillis: 1_500,
      lockTimeoutMillis: 1_000,
      poolConfig: { max: 1 },
    });
    const locker = new pg.Client({ connectionString: privateServer().url });
    await locker.connect();
    try {
      await persist.writeSignalData("BTC/USDT", STRATEGY, makeSignalRow(1));
      await lockRecordRow(locker, persist, "BTC/USDT");
      // Holds the pool's only connection while it waits for the row lock.
      const holding = rejection(persist.writeSignalData("BTC/USDT", STRATEGY, makeSignalRow(2)));
      const refused = await rejection(persist.writeSignalData("ETH/USDT", STRATEGY, makeSignalRow(3)));
      expect(refused).toBeInstanceOf(BackendUnavailableError);
      expect(refused.outcome).toBe("not-applied");
      expect((await holding).outcome).toBe("not-applied");
      await locker.query("ROLLBACK");
      expect(await storedSignal(persist, "ETH/USDT")).toBeNull();
    } finally {
      await locker.end();
      await persist.close();
    }
  });
});
