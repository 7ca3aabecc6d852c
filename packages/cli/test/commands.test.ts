// Every command against every backend: real servers, scopes of their own.

import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { makeSignalRow } from "@persist-kit/contract";
import {
  type ClosablePersist,
  createPersist,
  PersistSignalAdapter,
  type RecordStore,
  signalRecordKey,
} from "@persist-kit/core";
import * as persistFile from "@persist-kit/persist-file";
import * as persistMongo from "@persist-kit/persist-mongo";
import * as persistPostgres from "@persist-kit/persist-postgres";
import * as persistRedis from "@persist-kit/persist-redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, cli, freshDir } from "./cli-helpers.js";

const backends = [persistFile, persistRedis, persistPostgres, persistMongo];
const SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"];

async function open(url: string): Promise<ClosablePersist & { records: RecordStore }> {
  return (await createPersist(url, { backends })) as ClosablePersist & { records: RecordStore };
}

for (const [backend, freshUrl] of Object.entries(BACKENDS)) {
  describe(`persist-kit on ${backend}`, () => {
    let url: string;
    let persist: ClosablePersist & { records: RecordStore };
    let owner: PersistSignalAdapter;
    const env = () => ({ STORE_URL: url });

    beforeAll(async () => {
      url = await freshUrl("commands");
      persist = await open(url);
      for (const [index, symbol] of SYMBOLS.entries()) {
        await persist.writeSignalData(
          symbol,
          "momentum",
          makeSignalRow(index + 1, { symbol, openTimestamp: Date.now() - 90 * 60_000 }),
        );
      }
      await persist.writeSignalData("BTC/USDT", "grid", makeSignalRow(7, { priceOpen: 0.1 + 0.2 }));
      // A running bot: it owns grid / BTC/USDT while the tests run.
      owner = new PersistSignalAdapter(persist, { exclusive: true });
      await owner.waitForInit("BTC/USDT", "grid");
    });

    afterAll(async () => {
      await owner?.close();
      await persist?.close();
    });

    it("ls: every open signal with position, price, age, revision and owner; --strategy filters; --json", async () => {
      const table = await cli(["ls", "env:STORE_URL"], { env: env() });
      expect(table.status).toBe(0);
      const lines = table.stdout.trimEnd().split("\n");
      expect(lines[0]).toMatch(/^STRATEGY\s+SYMBOL\s+POSITION\s+PRICE OPEN\s+AGE\s+REVISION\s+OWNER$/);
      expect(lines).toHaveLength(5);
      expect(lines[1]).toMatch(/^grid\s+BTC\/USDT\s+short\s+0\.30000000000000004\s+\S.*\s+\d+\s+pid \d+@/);
      expect(lines[2]).toMatch(/^momentum\s+BTC\/USDT\s+short\s+64231\.170999999995\s+1h 30m\s+\d+\s+-$/);
      expect(table.stderr).toBe("4 open signals\n");

      const json = await cli(["ls", "--strategy", "momentum", "--json"], { env: { PERSIST_URL: url } });
      expect(json.status).toBe(0);
      const listed = JSON.parse(json.stdout);
      expect(listed.map((signal: { symbol: string }) => signal.symbol)).toEqual(SYMBOLS);
      expect(listed[1]).toMatchObject({
        strategyName: "momentum",
        position: "long",
        priceOpen: 64_231.172,
        owner: null,
      });
    });

    it("get: the stored text byte for byte, its revision and owner; exit 1 for a key with nothing stored", async () => {
      const stored = await persist.records.read(signalRecordKey("BTC/USDT", "grid"));
      const shown = await cli(["get", url, "grid", "BTC/USDT"]);
      expect(shown.status).toBe(0);
      expect(stored.found && shown.stdout).toBe(
        `revision ${stored.revision}, owner pid ${process.pid}@${(await import("node:os")).hostname()}\n${stored.found ? stored.json : ""}\n`,
      );
      const json = JSON.parse((await cli(["get", url, "grid", "BTC/USDT", "--json"])).stdout);
      expect(JSON.parse(json.json).priceOpen).toBe(0.1 + 0.2);
      const absent = await cli(["get", url, "grid", "XRP/USDT"]);
      expect(absent).toMatchObject({ status: 1, stdout: "" });
      expect(absent.stderr).toMatch(/no signal stored for grid \/ XRP\/USDT/);
    });

    it("a stored text that is not a valid signal: ls lists it as corrupt, get shows it, both exit 1; rm deletes it", async () => {
      const key = signalRecordKey("DOGE/USDT", "broken");
      await persist.records.write(key, '{"id":"x","position":"sideways"}');
      try {
        const listed = await cli(["ls", url, "--strategy", "broken"]);
        expect(listed.status).toBe(1);
        expect(listed.stdout).toMatch(/^broken\s+DOGE\/USDT\s+corrupt\s+-\s+-\s+\d+\s+-$/m);
        expect(listed.stderr).toMatch(/not a valid signal: .*position/);
        const shown = await cli(["get", url, "broken", "DOGE/USDT"]);
        expect(shown.status).toBe(1);
        expect(shown.stdout).toMatch(/\n\{"id":"x","position":"sideways"\}\n$/);
        expect((await cli(["rm", url, "broken", "DOGE/USDT", "--yes"])).status).toBe(0);
        expect(await persist.records.read(key)).toMatchObject({ found: false });
      } finally {
        await persist.records.delete(key);
      }
    });

    it("rm: refuses without --yes when it cannot ask, refuses an owned key, deletes fenced with --yes", async () => {
      expect((await cli(["rm", url, "momentum", "SOL/USDT"])).status).toBe(2);
      const owned = await cli(["rm", url, "grid", "BTC/USDT", "--yes"]);
      expect(owned.status).toBe(1);
      expect(owned.stderr).toMatch(/owns grid \/ BTC\/USDT since .*; nothing deleted/);
      expect(await persist.readSignalData("BTC/USDT", "grid")).not.toBeNull();
      const deleted = await cli(["rm", url, "momentum", "SOL/USDT", "--yes", "--json"]);
      expect(deleted.status).toBe(0);
      expect(JSON.parse(deleted.stdout)).toMatchObject({ deleted: true });
      expect(await persist.readSignalData("SOL/USDT", "momentum")).toBeNull();
      expect((await cli(["rm", url, "momentum", "SOL/USDT", "--yes"])).status).toBe(1);
      await persist.writeSignalData(
        "SOL/USDT",
        "momentum",
        makeSignalRow(3, { symbol: "SOL/USDT", openTimestamp: Date.now() - 90 * 60_000 }),
      );
    });

    it("export and import: bit-exact at the same revisions, a second import changes nothing, a bad file writes nothing", async () => {
      const exported = await cli(["export", url]);
      expect(exported.status).toBe(0);
      const lines = exported.stdout
        .trimEnd()
        .split("\n")
        .map((text) => JSON.parse(text));
      expect(lines.pop()).toEqual({ end: true, records: lines.length });
      expect(lines.filter((record) => record.namespace === "signal")).toHaveLength(4);
      expect(lines.some((record) => record.namespace === "lease")).toBe(false);

      const target = await freshUrl("import");
      const first = await cli(["import", target, "-", "--json"], { stdin: exported.stdout });
      expect(first.status).toBe(0);
      expect(JSON.parse(first.stdout)).toMatchObject({ written: 4, unchanged: 0 });
      const again = await cli(["import", target, "-", "--json"], { stdin: exported.stdout });
      expect(JSON.parse(again.stdout)).toMatchObject({ written: 0, unchanged: 4 });
      const copy = await open(target);
      try {
        for (const record of lines) {
          const read = await copy.records.read({ namespace: record.namespace, parts: record.parts });
          expect(read).toEqual({ found: true, json: record.json, revision: record.revision });
        }
        // The target moved on: a newer revision is left alone, and counted (exit 1).
        await copy.writeSignalData("ETH/USDT", "momentum", makeSignalRow(99));
        const newer = await cli(["import", target, "-"], { stdin: exported.stdout });
        expect(newer.status).toBe(1);
        expect(newer.stdout).toMatch(/newer in the target 1/);
        expect((await copy.readSignalData("ETH/USDT", "momentum"))?.id).toBe("signal-99");

        // An export cut short (its end line missing, or lines lost before it): refused, nothing written.
        await copy.deleteSignalData("BTC/USDT", "momentum");
        const whole = exported.stdout.trimEnd().split("\n");
        for (const cut of [whole.slice(0, -1), [...whole.slice(0, 1), ...whole.slice(2)]]) {
          const short = await cli(["import", target, "-"], { stdin: `${cut.join("\n")}\n` });
          expect(short.status).toBe(2);
          expect(short.stderr).toMatch(/the export is incomplete .*; nothing was written/);
        }
        expect(await copy.readSignalData("BTC/USDT", "momentum")).toBeNull();
        // Leases are never exported nor imported: one that never expires would lock the key for good.
        expect((await cli(["export", url, "--namespace", "lease"])).stderr).toMatch(
          /leases belong to running processes/,
        );
        const lease = `${JSON.stringify({ namespace: "lease", parts: ["grid", "BTC/USDT"], revision: 5, json: "{}", sha256: "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" })}\n{"end":true,"records":1}\n`;
        const leased = await cli(["import", target, "-"], { stdin: lease });
        expect(leased.status).toBe(2);
        expect(leased.stderr).toMatch(/a lease: leases belong to running processes and are never imported/);

        // One tampered line: the whole import is refused before any write.
        await copy.deleteSignalData("BTC/USDT", "momentum");
        const tampered = exported.stdout.replace('"priceOpen\\":64231.170999999995', '"priceOpen\\":1');
        expect(tampered).not.toBe(exported.stdout);
        const refused = await cli(["import", target, "-"], { stdin: tampered });
        expect(refused.status).toBe(2);
        expect(refused.stderr).toMatch(/line \d+: the checksum does not match the text; nothing was written/);
        expect(await copy.readSignalData("BTC/USDT", "momentum")).toBeNull();
      } finally {
        await copy.close();
      }
    });

    it("doctor: exit 0 on the durable test store; FerretDB's unknown fails only with --strict", async () => {
      const report = await cli(["doctor", url, "--json"]);
      const parsed = JSON.parse(report.stdout);
      expect(parsed.backend).toBe(backend);
      expect(parsed.pingMs.p50).toBeGreaterThan(0);
      if (backend === "mongo") {
        expect(parsed.verdict).toBe("unknown");
        expect(report.status).toBe(0);
        expect((await cli(["doctor", url, "--strict"])).status).toBe(1);
      } else {
        expect(parsed).toMatchObject({ verdict: "ok" });
        expect(report.status).toBe(0);
        expect((await cli(["doctor", url, "--strict"])).status).toBe(0);
      }
      const human = await cli(["doctor", url]);
      expect(human.stdout).toMatch(/^store {7}.*\ndurability {2}(ok|unknown): /);
    });

    it("import-backtest-kit: a framework dump into the store; a skipped file makes exit 1", async () => {
      const dump = freshDir("dump");
      const file = join(dump, "data", "signal", "XRP/USDT_breakout_binance", "XRP/USDT.json");
      mkdirSync(dirname(file), { recursive: true });
      const row = { ...makeSignalRow(5), symbol: "XRP/USDT", strategyName: "breakout", exchangeName: "binance" };
      writeFileSync(file, JSON.stringify(row));
      const imported = await cli(["import-backtest-kit", dump, url, "--json"]);
      expect(imported.status, imported.stderr).toBe(0);
      expect(JSON.parse(imported.stdout)).toMatchObject({ imported: [{ domain: "Signal" }], skipped: [] });
      const listed = await cli(["ls", url, "--namespace", "bt-signal", "--json"]);
      expect(JSON.parse(listed.stdout)).toEqual([
        { key: ["breakout", "binance", "XRP/USDT"], revision: expect.any(Number), bytes: expect.any(Number) },
      ]);
      writeFileSync(join(dirname(file), ".tmp-1-XRP.json"), "{");
      const skipped = await cli(["import-backtest-kit", dump, url]);
      expect(skipped.status).toBe(1);
      expect(skipped.stdout).toMatch(
        /^skipped data\/signal\/XRP\/USDT_breakout_binance\/XRP\/\.tmp-1-XRP\.json: a temporary file/m,
      );
    });

    it("migrate refuses while a process owns keys, and copies with --ignore-owners", async () => {
      const target = await freshUrl("owned");
      const refused = await cli(["migrate", url, target]);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(
        /refused: 1 key\(s\) of the source .* are owned by running processes:\n {2}grid \/ BTC\/USDT: pid/,
      );
      const copy = await open(target);
      try {
        expect(await copy.readSignalData("BTC/USDT", "momentum")).toBeNull();
        const copied = await cli(["migrate", url, target, "--ignore-owners", "--json"]);
        expect(copied.status).toBe(0);
        expect(JSON.parse(copied.stdout)).toMatchObject({ records: 5, written: 5, mismatched: 0 });
        expect(await copy.readSignalData("BTC/USDT", "grid")).toEqual(await persist.readSignalData("BTC/USDT", "grid"));
        // The source closes a position after the copy: a second run says the target still holds it.
        await persist.deleteSignalData("ETH/USDT", "momentum");
        const again = await cli(["migrate", url, target, "--ignore-owners"]);
        expect(again.status).toBe(1);
        expect(again.stdout).toMatch(
          /1 record\(s\) only in the target, left as they are:\n {2}\["signal","momentum","ETH\/USDT"\]/,
        );
        expect(await copy.readSignalData("ETH/USDT", "momentum")).not.toBeNull();
      } finally {
        await copy.close();
      }
    });
  });
}

describe("usage", () => {
  it("--help on every command, exit 2 for an unknown command, a missing URL and a wrong argument count", async () => {
    for (const command of ["ls", "get", "rm", "export", "import", "migrate", "doctor", "import-backtest-kit"]) {
      const help = await cli([command, "--help"]);
      expect(help.status, command).toBe(0);
      expect(help.stdout, command).toMatch(new RegExp(`^Usage: persist-kit ${command} `));
    }
    expect((await cli(["--help"])).stdout).toMatch(/^Usage: persist-kit <command>/);
    expect((await cli(["frobnicate"])).status).toBe(2);
    const missing = await cli(["ls"]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/no store URL: pass one, env:NAME .* or set PERSIST_URL/);
    expect((await cli(["ls", "env:NOT_SET"])).stderr).toMatch(/the environment variable NOT_SET is not set/);
    expect((await cli(["get", "only-one"])).status).toBe(2);
    const forgotten = await cli(["get", "file:./data", "momentum"], { env: { PERSIST_URL: "file:./elsewhere" } });
    expect(forgotten.status).toBe(2);
    expect(forgotten.stderr).toMatch(/file: reads as a URL, and then 3 arguments are needed/);
    expect((await cli(["ls", "--no-such-flag"])).status).toBe(2);
    expect((await cli(["migrate", "file:./a", "file:./a"])).stderr).toMatch(/the same URL/);
    const dir = `file:${freshDir("same")}`;
    const same = await cli(["migrate", dir, `${dir}/../${dir.split("/").at(-1)}`]);
    expect(same.status).toBe(2);
    expect(same.stderr).toMatch(/the same directory/);
  });

  it("never prints a password: a warning for one on the command line, a redacted error for a server that is down", async () => {
    const secret = "hunter2-Very-Secret";
    const down = `redis://:${secret}@127.0.0.1:1`;
    const literal = await cli(["ls", down]);
    expect(literal.status).toBe(2);
    expect(literal.stderr).toMatch(/warning: this URL holds a password/);
    expect(literal.stderr).toMatch(/persist-kit ls: \w+Error: /);
    expect(literal.stderr + literal.stdout).not.toContain(secret);
    const fromEnv = await cli(["doctor", "env:SECRET_URL"], { env: { SECRET_URL: down } });
    expect(fromEnv.status).toBe(2);
    expect(fromEnv.stderr).not.toMatch(/warning/);
    expect(fromEnv.stderr + fromEnv.stdout).not.toContain(secret);
  });
});
