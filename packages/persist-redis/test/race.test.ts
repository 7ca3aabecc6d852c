// Conditional changes racing from several processes on one key: exactly one winner per round,
// on the single server and on the cluster. Rounds: PERSIST_KIT_RACE_ROUNDS (default 200).

import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { getRedisClusterNodes, getRedisUrl } from "@persist-kit/tools-test-servers";
import { afterAll, describe, expect, it } from "vitest";
import { RedisRecordStore, type RedisRecordStoreOptions } from "../src/index.js";
import { uniquePrefix } from "./helpers.js";

const WORKER = fileURLToPath(new URL("./fixtures/race-worker.mjs", import.meta.url));
const PROCESSES = 8;
const ROUNDS = Number(process.env.PERSIST_KIT_RACE_ROUNDS ?? 200);
const KEY = { namespace: "race", parts: ["group", "BTC/USDT"] };

interface Racer {
  child: ChildProcess;
  ready: Promise<void>;
  result: Promise<number[]>;
}

function startRacer(options: RedisRecordStoreOptions, writer: number): Racer {
  const child = spawn(process.execPath, [WORKER, JSON.stringify({ options, key: KEY, rounds: ROUNDS, writer })], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let signalReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (signalReady = resolve));
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    if (stdout.startsWith("ready\n")) signalReady();
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const result = new Promise<number[]>((resolve, reject) => {
    child.on("close", (code) => {
      const last = stdout.trim().split("\n").at(-1) ?? "";
      if (code !== 0 || !last.startsWith("{")) reject(new Error(`racer ${writer} exited ${code}: ${stderr}`));
      else resolve((JSON.parse(last) as { won: number[] }).won);
    });
  });
  // A racer that dies before "ready" must fail the test, not hang it.
  result.catch(() => signalReady());
  return { child, ready, result };
}

const deployments: { name: string; target(): Promise<RedisRecordStoreOptions> }[] = [
  { name: "single server", target: async () => ({ url: await getRedisUrl() }) },
  { name: "cluster", target: async () => ({ clusterNodes: await getRedisClusterNodes() }) },
];

describe.each(deployments)("conditional changes racing from several processes on a $name", (deployment) => {
  const prefix = uniquePrefix("race");
  let store: RedisRecordStore | undefined;

  afterAll(async () => {
    await store?.delete(KEY);
    await store?.close();
  });

  it(`${PROCESSES} processes x ${ROUNDS} rounds on one key (${deployment.name}): exactly one winner per round`, async () => {
    const options = { ...(await deployment.target()), prefix };
    const racers = Array.from({ length: PROCESSES }, (_, writer) => startRacer(options, writer));
    await Promise.all(racers.map((racer) => racer.ready));
    for (const racer of racers) racer.child.stdin?.write("go\n");
    const won = await Promise.all(racers.map((racer) => racer.result));

    const winners = new Map<number, number[]>();
    for (const [writer, rounds] of won.entries()) {
      for (const round of rounds) winners.set(round, [...(winners.get(round) ?? []), writer]);
    }
    const badRounds = Array.from({ length: ROUNDS }, (_, index) => index + 1).filter(
      (round) => winners.get(round)?.length !== 1,
    );
    expect(badRounds).toEqual([]);
    // Contention really happened: more than one process won some round.
    expect(won.filter((rounds) => rounds.length > 0).length).toBeGreaterThan(1);

    store = new RedisRecordStore(options);
    const final = await store.read(KEY);
    expect(final.revision).toBe(ROUNDS);
    if (ROUNDS % 2 === 0) expect(final.found).toBe(false);
    else
      expect(final).toMatchObject({
        found: true,
        json: JSON.stringify({ writer: winners.get(ROUNDS)?.[0], round: ROUNDS }),
      });
  }, 120_000);
});
