// Credentials: no password reaches a message, a stack, a cause or util.inspect, whatever the URL
// looks like; a server that refuses them fails the operation at once, without a reconnect loop.

import { expectNothingSecret, makeSignalRow, passwordArbitrary } from "@persist-kit/contract";
import { InvalidOptionError, listenWarning, type PersistWarning } from "@persist-kit/core";
import fc from "fast-check";

import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fromUrl, PersistRedis } from "../src/index.js";
import { redisUrlSettings } from "../src/redis-url.js";
import {
  closedPort,
  type PrivateCluster,
  type PrivateRedis,
  startPrivateCluster,
  startPrivateRedis,
  withRawClient,
} from "./helpers.js";

const CONTEXT = { backend: "redis", operation: "create" } as const;

/** Every form of URL a password goes in: [label, url, the password the URL means, or undefined where none can be told]. */
function urlForms(password: string, other: string, port: number): [string, string, string | undefined][] {
  const encoded = encodeURIComponent(password);
  const otherEncoded = encodeURIComponent(other);
  const host = `127.0.0.1:${port}`;
  return [
    ["redis://:password@", `redis://:${encoded}@${host}`, password],
    ["redis://user:password@ with a database", `redis://user:${encoded}@${host}/3`, password],
    ["rediss://:password@", `rediss://:${encoded}@${host}`, password],
    ["redis://user:password@ without a port", `redis://user:${encoded}@127.0.0.1`, password],
    ["?password=", `redis://${host}?password=${encoded}`, password],
    ["?username=&password= with a database", `redis://${host}/2?username=user&password=${encoded}`, password],
    ["multi-host, one password", `redis://:${encoded}@${host},127.0.0.1:${port + 1}`, undefined],
    [
      "multi-host, a password per host",
      `redis://:${otherEncoded}@${host},:${encoded}@127.0.0.1:${port + 1}`,
      undefined,
    ],
    ["unencoded :password@", `redis://:${password}@${host}`, undefined],
    ["unencoded user:password@", `redis://user:${password}@${host}/1`, undefined],
    ["unencoded rediss://", `rediss://:${password}@${host}`, undefined],
    ["unencoded ?password=", `redis://${host}?password=${password}`, undefined],
    ["unencoded multi-host", `redis://:${other}@${host},:${password}@127.0.0.1:${port + 1}`, undefined],
  ];
}

describe("no password shows in any error of the backend", () => {
  it("fuzz: 10,000 passwords in every URL form; constructing refuses or reads the password exactly", async () => {
    const port = await closedPort();
    let connects = 0;
    await fc.assert(
      fc.asyncProperty(passwordArbitrary, passwordArbitrary, async (secret, otherSecret) => {
        const secrets = [secret, otherSecret];
        for (const [label, url, meant] of urlForms(secret.password, otherSecret.password, port)) {
          let persist: PersistRedis;
          try {
            persist = new PersistRedis({ url, timeoutMs: 20 });
          } catch (error) {
            expect(error, label).toBeInstanceOf(InvalidOptionError);
            expect(meant, `${label}: a well-formed URL was refused`).toBeUndefined();
            expectNothingSecret(error, secrets, label);
            continue;
          }
          const settings = redisUrlSettings(url, CONTEXT);
          // Whatever the URL's shape, no part of a password becomes the host or the port.
          expect(settings.host, label).toBe("127.0.0.1");
          expect([port, 6379], label).toContain(settings.port);
          if (meant !== undefined) expect(settings.password, label).toBe(meant);
          // A connection error (nothing listens) for every 100th URL: real I/O, one timeout each.
          if (connects++ % 100 === 0) {
            const error = await persist.writeSignalData("BTC/USDT", "s", makeSignalRow(1)).catch((reason) => reason);
            expect(error, label).toBeInstanceOf(Error);
            expectNothingSecret(error, secrets, label);
          }
          await persist.close();
        }
        const other = fromUrl.bind(undefined, `http://:${secret.password}@127.0.0.1`);
        expect(other).toThrow(InvalidOptionError);
        try {
          other();
        } catch (error) {
          expectNothingSecret(error, secrets, "fromUrl with another scheme");
        }
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 10_000) },
    );
  }, 300_000);

  it("the URL parser's own error, which holds the URL, is never a cause", () => {
    const error = (() => {
      try {
        return new PersistRedis({ url: "redis://:pa/ss@127.0.0.1:6379" });
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as Error).cause).toBeUndefined();
    expect(String((error as Error).message)).toMatch(/write "\/", "\?", "#", "@" and "%" .* as %2F, %3F, %23, %40/);
  });
});

describe("a server that refuses the credentials", () => {
  let server: PrivateRedis;
  const backends: PersistRedis[] = [];
  const warnings: PersistWarning[] = [];
  let stopListening: () => void = () => {};

  function backend(options: ConstructorParameters<typeof PersistRedis>[0]): PersistRedis {
    const made = new PersistRedis({ timeoutMs: 5_000, ...options });
    backends.push(made);
    return made;
  }

  // A plain client logged in with the server's password of the moment.
  async function asAdmin<T>(body: (client: Redis) => Promise<T>): Promise<T> {
    const client = new Redis({
      port: server.port,
      password: currentPassword,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    client.on("error", () => {});
    try {
      await client.connect();
      return await body(client);
    } finally {
      client.disconnect();
    }
  }

  // The server's count of accepted connections: a reconnect loop shows as a growing count.
  async function connectionsAccepted(): Promise<number> {
    const info = await asAdmin((client) => client.info("stats"));
    return Number(/total_connections_received:(\d+)/.exec(info)?.[1]);
  }

  let currentPassword = "first-Password";

  beforeAll(async () => {
    // Durable, so the warnings seen below can only come from what is under test.
    server = await startPrivateRedis(["appendonly yes", "appendfsync always", 'save ""']);
    // Set once the server answers: the helper waits for a PING without a password.
    await withRawClient(server.port, (client) => client.config("SET", "requirepass", currentPassword));
    stopListening = listenWarning((warning) => warnings.push(warning));
  });

  afterEach(async () => {
    await Promise.all(backends.splice(0).map((made) => made.close()));
  });

  afterAll(async () => {
    stopListening();
    await server.destroy();
  });

  it("WRONGPASS rejects at once (InvalidOptionError, not-applied) and the client does not reconnect", async () => {
    const persist = backend({ url: `redis://:wrong-Password@127.0.0.1:${server.port}` });
    const started = performance.now();
    const error = await persist.writeSignalData("BTC/USDT", "auth", makeSignalRow(1)).catch((reason) => reason);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ outcome: "not-applied", operation: "write" });
    expect(error.message).toMatch(/the server refused the credentials \(WRONGPASS/);
    expectNothingSecret(error, [{ password: "wrong-Password", core: "wrong-Password" }], "WRONGPASS");

    // Reconnection would back off from 50 ms: a loop shows within a second.
    const before = await connectionsAccepted();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await connectionsAccepted()).toBe(before + 1);
  });

  it("NOAUTH (no password given) rejects at once the same way", async () => {
    const persist = backend({ url: `redis://127.0.0.1:${server.port}` });
    const started = performance.now();
    const error = await persist.readSignalData("BTC/USDT", "auth").catch((reason) => reason);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ outcome: "not-applied" });
    expect(error.message).toMatch(/NOAUTH/);
  });

  it("the next operation tries once more, and works once the server takes the password", async () => {
    const persist = backend({ url: `redis://:second-Password@127.0.0.1:${server.port}` });
    await expect(persist.ping()).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(persist.ping()).rejects.toBeInstanceOf(InvalidOptionError);
    await asAdmin((client) => client.config("SET", "requirepass", "second-Password"));
    currentPassword = "second-Password";
    await persist.writeSignalData("BTC/USDT", "auth", makeSignalRow(2));
    expect(await persist.readSignalData("BTC/USDT", "auth")).toEqual(makeSignalRow(2));
  });

  it("fuzz on the server: 200 random passwords; the right one connects, a wrong one is refused at once, neither shows", async () => {
    const host = `127.0.0.1:${server.port}`;
    // [form, whether the password is percent-encoded in it]
    const forms: [(password: string) => { url: string; redisOptions?: { password: string } }, boolean][] = [
      [(password) => ({ url: `redis://:${encodeURIComponent(password)}@${host}` }), true],
      [(password) => ({ url: `redis://default:${encodeURIComponent(password)}@${host}/0` }), true],
      [(password) => ({ url: `redis://${host}?password=${encodeURIComponent(password)}` }), true],
      [(password) => ({ url: `redis://${host}`, redisOptions: { password } }), true],
      [(password) => ({ url: `redis://:${password}@${host}` }), false],
      [(password) => ({ url: `redis://${host}?password=${password}` }), false],
    ];
    const used: { password: string; core: string }[] = [];
    let sample = 0;
    await fc.assert(
      fc.asyncProperty(passwordArbitrary, passwordArbitrary, async (right, wrong) => {
        fc.pre(right.password !== wrong.password);
        used.push(right, wrong);
        await asAdmin((client) => client.config("SET", "requirepass", right.password));
        currentPassword = right.password;
        const [form, encoded] = forms[sample++ % forms.length] as (typeof forms)[number];
        const secrets = [right, wrong];
        try {
          // The right password connects where it is encoded; unencoded it may be refused, never shown.
          const answer = await backend({ ...form(right.password), timeoutMs: 2_000 })
            .ping()
            .catch((reason) => reason);
          if (answer !== undefined) {
            expect(answer).toBeInstanceOf(InvalidOptionError);
            expect(encoded, "an encoded password was refused").toBe(false);
            expectNothingSecret(answer, secrets, "the right password");
          }
          const bad = backend({ ...form(wrong.password), timeoutMs: 2_000 });
          const started = performance.now();
          const error = await bad.writeSignalData("BTC/USDT", "fuzz", makeSignalRow(3)).catch((reason) => reason);
          expect(performance.now() - started).toBeLessThan(1_000);
          expect(error).toBeInstanceOf(InvalidOptionError);
          expectNothingSecret(error, secrets, "a wrong password");
        } catch (error) {
          if (encoded || !(error instanceof InvalidOptionError)) throw error;
          // Refused at construction: an unencoded password that does not fit a URL.
          expectNothingSecret(error, secrets, "a URL refused at construction");
        } finally {
          await Promise.all(backends.splice(0).map((made) => made.close()));
        }
      }),
      { numRuns: 200 },
    );
    for (const warning of warnings) expectNothingSecret(warning, used, "a warning");
  }, 120_000);
});

describe("a Redis Cluster that refuses the credentials", () => {
  let cluster: PrivateCluster;

  beforeAll(async () => {
    cluster = await startPrivateCluster(3, ["appendonly yes", "appendfsync always"]);
    // Set once the cluster is formed: the helper forms it without a password.
    for (const master of cluster.masters) {
      await withRawClient(master.port, (client) => client.config("SET", "requirepass", "cluster-Password"));
    }
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  // Connections accepted by all masters together (each probe adds one per master).
  async function connectionsAccepted(): Promise<number> {
    let total = 0;
    for (const master of cluster.masters) {
      const client = new Redis({
        port: master.port,
        password: "cluster-Password",
        lazyConnect: true,
        retryStrategy: () => null,
      });
      try {
        await client.connect();
        total += Number(/total_connections_received:(\d+)/.exec(await client.info("stats"))?.[1]);
      } finally {
        client.disconnect();
      }
    }
    return total;
  }

  it("rejects at once with InvalidOptionError, shows no password, and stops reconnecting", async () => {
    const persist = new PersistRedis({
      clusterNodes: cluster.nodes,
      redisOptions: { password: "wrong-cluster-Password" },
      timeoutMs: 5_000,
    });
    try {
      const started = performance.now();
      const error = await persist.writeSignalData("BTC/USDT", "auth", makeSignalRow(1)).catch((reason) => reason);
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(error).toMatchObject({ outcome: "not-applied" });
      expect(error.message).toMatch(/WRONGPASS/);
      expectNothingSecret(error, [{ password: "wrong-cluster-Password", core: "wrong-cluster-Password" }], "cluster");
      const before = await connectionsAccepted();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await connectionsAccepted()).toBe(before + cluster.masters.length);
    } finally {
      await persist.close();
    }
  });
});
