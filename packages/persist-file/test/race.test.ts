import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type RecordWorker, raceRounds, startRecordWorker } from "@persist-kit/contract";
import type { RecordChange, RecordKey } from "@persist-kit/core";
import { FileRecordStore } from "@persist-kit/persist-file";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const PROCESSES = 8;
const ROUNDS = raceRounds(undefined);
const worker = { module: fileURLToPath(new URL("./fixtures/file-worker.mjs", import.meta.url)) };

let baseDir = "";
let racers: RecordWorker[] = [];
let store: FileRecordStore;

beforeAll(async () => {
  baseDir = await mkdtemp(path.join(tmpdir(), "persist-file-race-"));
  store = new FileRecordStore({ baseDir });
  racers = await Promise.all(
    Array.from({ length: PROCESSES }, () => startRecordWorker({ worker, options: { baseDir } })),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(racers.map((racer) => racer.stop()));
  await store.close();
  await rm(baseDir, { recursive: true, force: true });
}, 60_000);

/** Sends one change to every racer before reading any answer; returns each racer's change. */
async function race(
  key: RecordKey,
  op: "write" | "delete",
  condition: { revision: number } | { below: number },
  round: number,
) {
  const answers = await Promise.all(
    racers.map((racer, index) =>
      racer.ask({
        op,
        key: { namespace: key.namespace, parts: [...key.parts] },
        json: JSON.stringify({ round, racer: index }),
        condition,
      }),
    ),
  );
  for (const answer of answers) expect(answer.error, `round ${round}`).toBeUndefined();
  return answers.map((answer) => answer.result as RecordChange);
}

function winnerOf(changes: RecordChange[], round: number): number {
  const winners = changes.flatMap((change, index) => (change.applied ? [index] : []));
  expect(winners, `round ${round}`).toHaveLength(1);
  return winners[0] as number;
}

describe(`${PROCESSES} processes racing conditional changes on keys that have no file yet`, () => {
  it(
    `each of ${ROUNDS} rounds on a fresh key of one group has exactly one winner, whose revision is stored`,
    async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const key = { namespace: "race", parts: ["group", `fresh-${round}`] };
        const deleting = round % 4 === 3;
        const condition = round % 2 === 0 ? { revision: 0 } : { below: round + 2 };
        const changes = await race(key, deleting ? "delete" : "write", condition, round);
        const winner = winnerOf(changes, round);
        const won = changes[winner] as RecordChange;
        const stored = await store.read(key);
        expect(stored.revision, `round ${round}`).toBe(won.revision);
        if (deleting) expect(stored.found).toBe(false);
        else expect(stored).toMatchObject({ found: true, json: JSON.stringify({ round, racer: winner }) });
        for (const change of changes) expect(change.revision).toBe(won.revision);
      }
    },
    Math.max(60_000, ROUNDS * PROCESSES * 100),
  );

  it(
    `on one signal key, written and deleted in turn, each of ${ROUNDS} rounds has exactly one winner`,
    async () => {
      const key = { namespace: "signal", parts: ["momentum", "BTC/USDT"] };
      for (let round = 0; round < ROUNDS; round++) {
        const before = await store.read(key);
        const changes = await race(key, round % 3 === 2 ? "delete" : "write", { revision: before.revision }, round);
        const won = changes[winnerOf(changes, round)] as RecordChange;
        expect(won.revision).toBe(before.revision + 1);
        expect((await store.read(key)).revision).toBe(won.revision);
      }
    },
    Math.max(60_000, ROUNDS * PROCESSES * 100),
  );
});
