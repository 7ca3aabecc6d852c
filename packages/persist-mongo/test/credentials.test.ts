// Credentials: no password reaches a message, a stack, a cause or util.inspect, whatever the URL
// looks like; credentials the server refuses fail the operation at once, as a configuration error.
// FerretDB on SQLite has no users: it refuses every password (MechanismUnavailable), a real
// refusal from the server for every attempt below.

import { expectNothingSecret, makeSignalRow, passwordArbitrary, type TestPassword } from "@persist-kit/contract";
import { InvalidOptionError, listenWarning, type PersistWarning } from "@persist-kit/core";
import { getMongoUrl } from "@persist-kit/tools-test-servers";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PersistMongo, type PersistMongoOptions } from "../src/index.js";
import { closedPort, uniqueDatabaseName } from "./helpers.js";

const databaseName = uniqueDatabaseName("credentials");
let host = "";
let closedHost = "";
const opened: PersistMongo[] = [];
const warnings: PersistWarning[] = [];
let stopWarnings: () => void = () => {};

beforeAll(async () => {
  host = new URL(await getMongoUrl()).host;
  closedHost = `127.0.0.1:${await closedPort()}`;
  stopWarnings = listenWarning((warning) => warnings.push(warning));
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((backend) => backend.close()));
});

afterAll(() => stopWarnings());

function backend(url: string, options: PersistMongoOptions = {}): PersistMongo {
  const made = new PersistMongo(url, { serverSelectionTimeoutMS: 2_000, databaseName, ...options });
  opened.push(made);
  return made;
}

// [label, url and options for a password, whether the URL means exactly that password]
type Form = [string, (password: string) => [string, PersistMongoOptions?], boolean];
const forms: Form[] = [
  ["user:password@", (password) => [`mongodb://bot:${encodeURIComponent(password)}@${host}/${databaseName}`], true],
  [
    "user:password@ with authSource",
    (password) => [`mongodb://bot:${encodeURIComponent(password)}@${host}/?authSource=admin`],
    true,
  ],
  // Both names of one server: each refuses the password.
  [
    "two hosts",
    (password) => [`mongodb://bot:${encodeURIComponent(password)}@${host},${host.replace("127.0.0.1", "localhost")}/`],
    true,
  ],
  [
    "clientOptions.auth",
    (password) => [`mongodb://${host}/`, { clientOptions: { auth: { username: "bot", password } } }],
    true,
  ],
  ["unencoded user:password@", (password) => [`mongodb://bot:${password}@${host}/`], false],
  ["unencoded, two hosts", (password) => [`mongodb://bot:${password}@${host},${closedHost}/`], false],
  ["unencoded ?password=", (password) => [`mongodb://${host}/?authSource=admin&password=${password}`], false],
];

describe("credentials that the server refuses", () => {
  it("refused credentials are an InvalidOptionError at once, nothing sent, and do not show", async () => {
    const started = performance.now();
    const error = await backend(`mongodb://bot:wrong-Password-1@${host}/`)
      .writeSignalData("BTC/USDT", "auth", makeSignalRow(1))
      .catch((reason) => reason);
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ outcome: "not-applied" });
    expect(error.message).toMatch(/refused the credentials/);
    expectNothingSecret(error, [{ password: "wrong-Password-1", core: "wrong-Password-1" }], "a refused password");
  });

  it("a URL the driver could read two ways is refused at construction, without showing it", () => {
    for (const url of [
      `mongodb://bot:p@ssword-core@${host}/`,
      `mongodb://bot:pass/word-core@${host}/`,
      `mongodb://bot:pass word-core@${host}/`,
      `mongodb://bot:pass#word-core@${host}/`,
      `mongodb://bot:pass?word-core@${host}/`,
      `mongodb://bot:pass%zzword-core@${host}/`,
      `mongodb://bot:word-core@${host},bot:word-core@${closedHost}/`,
    ]) {
      expect(() => backend(url), url).toThrow(InvalidOptionError);
      try {
        backend(url);
      } catch (error) {
        expectNothingSecret(error, [{ password: "word-core", core: "word-core" }], url);
      }
    }
  });

  it("fuzz on the server: 200 random passwords in every form; each is refused at once and never shows", async () => {
    const used: TestPassword[] = [];
    let sample = 0;
    await fc.assert(
      fc.asyncProperty(passwordArbitrary, async (secret) => {
        used.push(secret);
        const [label, form, exact] = forms[sample++ % forms.length] as Form;
        try {
          const [url, options] = form(secret.password);
          const persist = backend(url, options);
          const started = performance.now();
          const error = await persist.writeSignalData("BTC/USDT", "fuzz", makeSignalRow(2)).catch((reason) => reason);
          expect(performance.now() - started).toBeLessThan(2_500);
          expect(error, `${label}: the server took a password`).toBeInstanceOf(Error);
          if (exact) expect(error, `${label}: ${error}`).toBeInstanceOf(InvalidOptionError);
          expectNothingSecret(error, [secret], label);
        } catch (error) {
          if (exact || !(error instanceof InvalidOptionError)) throw error;
          // Refused at construction: an unencoded password that does not fit a URL.
          expectNothingSecret(error, [secret], `${label}, refused at construction`);
        } finally {
          await Promise.all(opened.splice(0).map((made) => made.close()));
        }
      }),
      { numRuns: 200 },
    );
    for (const warning of warnings) expectNothingSecret(warning, used, "a warning");
  }, 180_000);
});
