import { inspect } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  connectionUrlSecrets,
  createPersist,
  InvalidOptionError,
  PersistError,
  PersistMemory,
  redactCredentials,
} from "../src/index.js";

describe("errors", () => {
  it("name the backend, operation and key, and carry the cause", () => {
    const cause = new Error("socket closed");
    const error = new PersistError("no answer", {
      backend: "redis",
      operation: "write",
      strategyName: "s",
      symbol: "BTC/USDT",
      cause,
    });
    expect(error.message).toBe('[redis] write "s"/"BTC/USDT": no answer');
    expect(error).toMatchObject({
      name: "PersistError",
      backend: "redis",
      operation: "write",
      strategyName: "s",
      symbol: "BTC/USDT",
    });
    expect(error.cause).toBe(cause);
  });

  it("never show credentials from connection URLs", () => {
    const error = new PersistError("cannot reach redis://user:hunter2@db.example:6379/0", {
      backend: "redis",
      operation: "create",
    });
    expect(error.message).not.toContain("hunter2");
    expect(error.message).toContain("redis://***@db.example:6379/0");
    expect(redactCredentials("postgres://app:s3cr3t@127.0.0.1/db and mongodb+srv://u:p@c.net")).toBe(
      "postgres://***@127.0.0.1/db and mongodb+srv://***@c.net",
    );
  });
});

describe("createPersist", () => {
  it("builds the memory backend from memory:", async () => {
    expect(await createPersist("memory:")).toBeInstanceOf(PersistMemory);
  });

  it("names the package to install when a backend is missing, without the password", async () => {
    const missing = Object.assign(new Error("Cannot find package '@persist-kit/persist-redis'"), {
      code: "ERR_MODULE_NOT_FOUND",
    });
    const attempt = createPersist("redis://:topsecret@127.0.0.1:6379", { importModule: () => Promise.reject(missing) });
    const error = (await attempt.catch((caught: unknown) => caught)) as Error;
    expect(error.message).toContain("install it with: npm install @persist-kit/persist-redis ioredis");
    expect(error.message).not.toContain("topsecret");
  });

  it("passes the URL and options to the backend package's fromUrl", async () => {
    const calls: unknown[] = [];
    const backend = new PersistMemory();
    const made = await createPersist("postgresql://db/app", {
      ttlMs: 5,
      importModule: async (name) => ({
        fromUrl: (url: string, options: unknown) => {
          calls.push([name, url, options]);
          return backend;
        },
      }),
    });
    expect(made).toBe(backend);
    expect(calls).toEqual([["@persist-kit/persist-postgres", "postgresql://db/app", { ttlMs: 5 }]]);
  });

  it("refuses unknown schemes, listing the known ones", async () => {
    await expect(createPersist("ftp://x")).rejects.toThrow(
      /unsupported URL \(the scheme "ftp:"\); expected one of memory:, file:, redis:/,
    );
  });

  it("names an unsupported URL without its password", async () => {
    for (const url of ["ftp://trader:topsecret@host/x", "ftp://trader:top secret@host/x", "ftp:topsecret"]) {
      const error = (await createPersist(url).catch((caught: unknown) => caught)) as Error;
      expect(error.message).toContain('the scheme "ftp:"');
      expect(error.message).not.toMatch(/top.?secret/);
    }
  });

  it("refuses a bad ttlMs", async () => {
    await expect(createPersist("memory:", { ttlMs: 0 })).rejects.toThrow(
      /ttlMs must be a whole number of milliseconds/,
    );
  });
});

describe("credentials never reach a message, a stack, a cause or util.inspect", () => {
  const printable = fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
    minLength: 4,
    maxLength: 24,
  });
  const schemes = ["redis", "rediss", "mongodb", "mongodb+srv", "postgres", "postgresql", "foo"];

  it("fuzz: 10,000 passwords over printable ASCII, every scheme, single and multi-host, raw and encoded", () => {
    let checked = 0;
    fc.assert(
      fc.property(
        printable,
        fc.constantFrom(...schemes),
        fc.boolean(),
        fc.boolean(),
        (password, scheme, multiHost, encoded) => {
          const secret = encoded ? encodeURIComponent(password) : password;
          const hosts = multiHost ? "db1.example:6379,db2.example:6380" : "db.example:6379";
          const urls = [
            `${scheme}://user:${secret}@${hosts}/0`,
            `${scheme}://:${secret}@${hosts}`,
            `${scheme}://${hosts}/0?password=${encodeURIComponent(password)}&db=1`,
          ];
          for (const url of urls) {
            const driverError = Object.assign(new Error(`connect to ${url} failed`), {
              command: { name: "auth", args: ["user", password] },
              cause: new Error(`inner: ${url}`),
            });
            const error = new PersistError(`cannot reach ${url} (${JSON.stringify(url)})`, {
              backend: "test",
              operation: "create",
              cause: driverError,
              secrets: [password],
            });
            const shown = [error.message, error.stack ?? "", inspect(error, { depth: 10 })].join("\n");
            // A password of 4+ characters must be gone everywhere; the URL rules catch shorter ones too.
            if (shown.includes(password) || shown.includes(encodeURIComponent(password))) {
              throw new Error(`leaked ${JSON.stringify(password)} from ${url}`);
            }
            checked++;
          }
        },
      ),
      { numRuns: 10_000 },
    );
    expect(checked).toBe(30_000);
  }, 120_000);
});

describe("connectionUrlSecrets: the passwords of a connection URL, or a refusal of a URL a driver could misread", () => {
  const context = { backend: "test", operation: "create" } as const;
  const printable = fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
    minLength: 4,
    maxLength: 24,
  });

  it("gives the password as written and decoded, from the user info and from password parameters", () => {
    expect(connectionUrlSecrets("postgres://bot:s%2Fcret@db:5432/app", context)).toEqual(["s%2Fcret", "s/cret"]);
    expect(connectionUrlSecrets("postgres://db/app?user=bot&password=a%26b", context)).toEqual(["a%26b", "a&b"]);
    // An unencoded "&" or "=" cannot be told from the next parameter: the rest of the query is
    // secret, whole and in pieces, as a driver may show a piece as a parameter name.
    expect(connectionUrlSecrets("mongodb://db/?password=abcd&efgh=ijkl", context)).toEqual([
      "abcd&efgh=ijkl",
      "abcd",
      "efgh",
      "ijkl",
    ]);
    expect(connectionUrlSecrets("mongodb://bot@db1,db2/trading", context)).toEqual([]);
    expect(connectionUrlSecrets("/var/run/postgresql app", context)).toEqual([]);
  });

  it.each([
    ["an unencoded @", "postgres://bot:p@ss-word-core@db/app"],
    ["an unencoded / (an @ after the host)", "mongodb://bot:pass/word-core@db/"],
    ["an unencoded ?", "mongodb://bot:pass?word-core@db/"],
    ["an unencoded space", "postgres://bot:pass word-core@db/app"],
    ["a #", "postgres://bot:pass#word-core@db/app"],
    ["a bad % escape", "postgres://bot:pass%zzword-core@db/app"],
    ["user info per host", "mongodb://bot:word-core@db1,bot:word-core@db2/"],
    ["a space in a password parameter", "postgres://db/app?password=pass word-core"],
  ])("refuses %s without showing the URL", (_what, url) => {
    let error: unknown;
    try {
      connectionUrlSecrets(url, context);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ outcome: "not-applied" });
    expect(inspect(error, { depth: 10 })).not.toContain("word-core");
  });

  it("fuzz: 10,000 passwords in every form; refused, or every occurrence is redacted with the secrets it gives", () => {
    let refused = 0;
    let redacted = 0;
    fc.assert(
      fc.property(printable, fc.constantFrom("postgres", "mongodb", "mongodb+srv", "redis"), (password, scheme) => {
        const urls = [
          `${scheme}://bot:${password}@db.example:5432/app`,
          `${scheme}://bot:${password}@db1.example,db2.example/app`,
          `${scheme}://db.example/app?user=bot&password=${password}`,
          `${scheme}://bot:${encodeURIComponent(password)}@db.example/app`,
        ];
        for (const url of urls) {
          let secrets: string[];
          try {
            secrets = connectionUrlSecrets(url, context);
          } catch (error) {
            if (!(error instanceof InvalidOptionError)) throw error;
            if (inspect(error, { depth: 10 }).includes(password)) throw new Error(`a refusal showed ${password}`);
            refused++;
            continue;
          }
          // What a driver might print: the URL, the password alone, its pieces between separators.
          const shown = redactCredentials(`cannot connect to ${url}: bad password ${password}`, secrets);
          if (shown.includes(password)) throw new Error(`${JSON.stringify(password)} shows in ${shown}`);
          redacted++;
        }
      }),
      { numRuns: 10_000 },
    );
    expect(refused).toBeGreaterThan(0);
    expect(redacted).toBeGreaterThanOrEqual(10_000);
  });
});
