// Credentials: no password reaches a message, a stack, a cause or util.inspect, whatever the URL
// looks like; credentials the server refuses fail the operation at once, as a configuration error.

import { expectNothingSecret, makeSignalRow, passwordArbitrary, type TestPassword } from "@persist-kit/contract";
import { InvalidOptionError, listenWarning, type PersistWarning } from "@persist-kit/core";
import fc from "fast-check";
import type pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PersistPostgres, type PersistPostgresOptions } from "../src/index.js";
import { adminPool } from "./postgres-test-env.js";
import { PrivatePostgres } from "./private-postgres.js";

const ROLE = "pk_password_role";

let server: PrivatePostgres;
let admin: pg.Pool;
let host = "";
const opened: PersistPostgres[] = [];
const warnings: PersistWarning[] = [];
let stopWarnings: () => void = () => {};

beforeAll(async () => {
  server = await PrivatePostgres.start({ hbaRules: [`host all ${ROLE} 127.0.0.1/32 scram-sha-256`] });
  admin = adminPool(server.url);
  await admin.query(`CREATE ROLE ${ROLE} LOGIN SUPERUSER`);
  host = new URL(server.url).host;
  stopWarnings = listenWarning((warning) => warnings.push(warning));
}, 120_000);

afterEach(async () => {
  await Promise.all(opened.splice(0).map((backend) => backend.close()));
});

afterAll(async () => {
  stopWarnings();
  await admin?.end();
  await server?.destroy();
});

async function setPassword(password: string): Promise<void> {
  const { rows } = await admin.query("SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text) AS sql", [
    ROLE,
    password,
  ]);
  await admin.query(rows[0].sql);
}

function backend(options: PersistPostgresOptions): PersistPostgres {
  const made = new PersistPostgres({ connectionTimeoutMillis: 2_000, ...options });
  opened.push(made);
  return made;
}

// [label, the options a password goes in, whether the URL means exactly that password]
type Form = [string, (password: string) => PersistPostgresOptions, boolean];
const forms: Form[] = [
  [
    "user:password@",
    (password) => ({ connectionString: `postgres://${ROLE}:${encodeURIComponent(password)}@${host}/postgres` }),
    true,
  ],
  [
    "postgresql:// with a query",
    (password) => ({
      connectionString: `postgresql://${ROLE}:${encodeURIComponent(password)}@${host}/postgres?application_name=pk`,
    }),
    true,
  ],
  [
    "?user=&password=",
    (password) => ({
      connectionString: `postgres://${host}/postgres?user=${ROLE}&password=${encodeURIComponent(password)}`,
    }),
    true,
  ],
  [
    "poolConfig.password",
    (password) => ({
      poolConfig: {
        host: "127.0.0.1",
        port: Number(new URL(`postgres://${host}`).port),
        user: ROLE,
        database: "postgres",
        password,
      },
    }),
    true,
  ],
  [
    "unencoded user:password@",
    (password) => ({ connectionString: `postgres://${ROLE}:${password}@${host}/postgres` }),
    false,
  ],
  [
    "unencoded, two hosts",
    (password) => ({ connectionString: `postgres://${ROLE}:${password}@${host},127.0.0.1:1/postgres` }),
    false,
  ],
  [
    "unencoded ?password=",
    (password) => ({ connectionString: `postgres://${host}/postgres?user=${ROLE}&password=${password}` }),
    false,
  ],
];

describe("credentials that the server checks", () => {
  it("a wrong password is an InvalidOptionError at once, nothing sent, and does not show", async () => {
    await setPassword("right-Password-1");
    const started = performance.now();
    const error = await backend(forms[0]?.[1]("wrong-Password-1") ?? {})
      .writeSignalData("BTC/USDT", "auth", makeSignalRow(1))
      .catch((reason) => reason);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ outcome: "not-applied" });
    expect(error.message).toMatch(/refused the credentials.*28P01/);
    expectNothingSecret(error, [{ password: "wrong-Password-1", core: "wrong-Password-1" }], "a wrong password");
  });

  it("a URL a driver could read two ways is refused at construction, without showing it", () => {
    for (const url of [
      `postgres://${ROLE}:p@ssword-core@${host}/postgres`,
      `postgres://${ROLE}:pass/word-core@${host}/postgres`,
      `postgres://${ROLE}:pass word-core@${host}/postgres`,
      `postgres://${ROLE}:pass#word-core@${host}/postgres`,
      `postgres://${ROLE}:pass%zzword-core@${host}/postgres`,
    ]) {
      let error: unknown;
      try {
        backend({ connectionString: url });
      } catch (thrown) {
        error = thrown;
      }
      expect(error, url).toBeInstanceOf(InvalidOptionError);
      expectNothingSecret(error, [{ password: "word-core", core: "word-core" }], url);
    }
  });

  it("a password beside a connection string, which pg would drop, is refused at construction", () => {
    expect(() =>
      backend({
        connectionString: `postgres://${ROLE}@${host}/postgres`,
        poolConfig: { password: "dropped-Password" },
      }),
    ).toThrow(/poolConfig.password would be ignored/);
  });

  it("fuzz on the server: 200 random passwords in every form; the right one connects, a wrong one is refused at once, neither shows", async () => {
    const used: TestPassword[] = [];
    let sample = 0;
    await fc.assert(
      fc.asyncProperty(passwordArbitrary, passwordArbitrary, async (right, wrong) => {
        fc.pre(right.password !== wrong.password);
        used.push(right, wrong);
        await setPassword(right.password);
        const [label, form, exact] = forms[sample++ % forms.length] as Form;
        const secrets = [right, wrong];
        try {
          const persist = backend(form(right.password));
          // The right password connects where the form means it exactly; otherwise it may be refused, never shown.
          const answer = await persist.writeSignalData("BTC/USDT", "fuzz", makeSignalRow(2)).catch((reason) => reason);
          if (answer === undefined) expect(await persist.readSignalData("BTC/USDT", "fuzz")).toEqual(makeSignalRow(2));
          else {
            expect(exact, `${label}: the right password was refused: ${answer}`).toBe(false);
            expectNothingSecret(answer, secrets, `${label}, the right password`);
          }
          const bad = backend(form(wrong.password));
          const started = performance.now();
          const error = await bad.writeSignalData("BTC/USDT", "fuzz", makeSignalRow(3)).catch((reason) => reason);
          expect(performance.now() - started).toBeLessThan(1_500);
          expect(error, `${label}: a wrong password was taken`).toBeInstanceOf(Error);
          if (exact) expect(error).toBeInstanceOf(InvalidOptionError);
          expectNothingSecret(error, secrets, `${label}, a wrong password`);
        } catch (error) {
          if (exact || !(error instanceof InvalidOptionError)) throw error;
          // Refused at construction: an unencoded password that does not fit a URL.
          expectNothingSecret(error, secrets, `${label}, refused at construction`);
        } finally {
          await Promise.all(opened.splice(0).map((made) => made.close()));
        }
      }),
      { numRuns: 200 },
    );
    for (const warning of warnings) expectNothingSecret(warning, used, "a warning");
  }, 180_000);
});
