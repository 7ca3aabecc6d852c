import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FileRecordStore, recordLocation } from "@persist-kit/persist-file";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

// Two containers sharing a volume: a writer in a PID namespace of its own, and processes of this
// namespace using the same baseDir. A pid names nothing across the two: the writer's pid here
// belongs to no process, or to an unrelated one.

const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
const WRITES = 300;
const KEYS = 4;
// Pids taken in the new namespace before the writer starts, so its pid is one no process of
// this namespace has (pid 1 would be this namespace's init, alive).
const PIDS_TO_SKIP = 1_000;

const unshareWorks =
  process.platform === "linux" &&
  spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "true"], { stdio: "ignore" }).status === 0;

let root = "";
const children: ChildProcess[] = [];

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "persist-file-pidns-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

afterEach(() => {
  for (const child of children.splice(0)) {
    child.kill("SIGCONT");
    child.kill("SIGKILL");
  }
});

/** Starts `source` (an ES module) in a new Node process; in a new PID namespace when `ownNamespace`. */
function startNode(source: string, args: string[], ownNamespace: boolean): ChildProcess {
  const node = [process.execPath, "--input-type=module", "-e", source, ...args];
  const [command, commandArgs] = ownNamespace
    ? [
        "unshare",
        [
          "--pid",
          "--fork",
          "--mount-proc",
          "--kill-child",
          "sh",
          "-c",
          `i=0; while [ $i -lt ${PIDS_TO_SKIP} ]; do /bin/true; i=$((i+1)); done; "$@"`,
          "sh",
          ...node,
        ],
      ]
    : [node[0] as string, node.slice(1)];
  const child = spawn(command, commandArgs, { cwd: PACKAGE_DIR, stdio: ["pipe", "pipe", "inherit"] });
  children.push(child);
  return child;
}

/** The lines a child prints, one at a time. */
function lines(child: ChildProcess): () => Promise<string> {
  let buffered = "";
  const waiting: ((line: string) => void)[] = [];
  const ready: string[] = [];
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    for (let end = buffered.indexOf("\n"); end !== -1; end = buffered.indexOf("\n")) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      const next = waiting.shift();
      if (next === undefined) ready.push(line);
      else next(line);
    }
  });
  return () => {
    const line = ready.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      waiting.push(resolve);
      child.once("exit", (code) => reject(new Error(`the child exited (${code}) before printing a line`)));
    });
  };
}

/** The pid, in this namespace, of the Node process that `child` runs (below unshare and sh, when it has its own namespace). */
function nodePid(child: ChildProcess): number {
  let pid = child.pid as number;
  for (let depth = 0; depth < 3; depth++) {
    if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "node") return pid;
    const [first] = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ");
    pid = Number(first);
  }
  throw new Error(`no node process below ${child.pid}`);
}

function isAliveHere(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

// Writes to KEYS keys of one group, KEYS at a time, WRITES in all; prints its pid once its store
// is open, then a report of the writes once stdin says go.
const WRITER = `
  import { FileRecordStore } from "@persist-kit/persist-file";
  const store = new FileRecordStore({ baseDir: process.argv[1] });
  await store.ping();
  process.stdout.write(JSON.stringify({ pid: process.pid }) + "\\n");
  await new Promise((resolve) => process.stdin.once("data", resolve));
  const errors = [];
  let done = 0;
  await Promise.all(Array.from({ length: ${KEYS} }, async (_, key) => {
    for (let round = 0; round < ${WRITES / KEYS}; round++) {
      try {
        await store.write({ namespace: "signal", parts: ["shared", "key" + key] }, JSON.stringify({ round }));
      } catch (error) {
        errors.push(error.message);
      }
      done++;
    }
  }));
  process.stdout.write(JSON.stringify({ done, failed: errors.length, errors: errors.slice(0, 3) }) + "\\n");
  await store.close();
  process.exit(0);`;

// Starts a store (its start-up sweep) again and again until stdin closes; prints how many.
const SWEEPER = `
  import { FileRecordStore } from "@persist-kit/persist-file";
  let stopped = false;
  process.stdin.on("end", () => { stopped = true; }).resume();
  let sweeps = 0;
  process.stdout.write("started\\n");
  while (!stopped) {
    const store = new FileRecordStore({ baseDir: process.argv[1] });
    await store.ping();
    await store.close();
    sweeps++;
  }
  process.stdout.write(JSON.stringify({ sweeps }) + "\\n");`;

describe.skipIf(!unshareWorks)("a writer in another PID namespace is never taken for a dead process", () => {
  it(`${WRITES} writes from another PID namespace, while stores start here again and again: none fails`, async () => {
    const baseDir = await mkdtemp(path.join(root, "store-"));
    const writer = startNode(WRITER, [baseDir], true);
    const writerLine = lines(writer);
    const { pid } = JSON.parse(await writerLine()) as { pid: number };
    expect(isAliveHere(pid), `pid ${pid} of the writer's namespace is also a live process here`).toBe(false);
    const sweeper = startNode(SWEEPER, [baseDir], false);
    const sweeperLine = lines(sweeper);
    expect(await sweeperLine()).toBe("started");
    writer.stdin?.write("go\n");
    const report = JSON.parse(await writerLine()) as { done: number; failed: number; errors: string[] };
    sweeper.stdin?.end();
    const { sweeps } = JSON.parse(await sweeperLine()) as { sweeps: number };
    expect(sweeps).toBeGreaterThan(0);
    expect({ ...report, sweeps }).toMatchObject({ done: WRITES, failed: 0, errors: [] });
  }, 120_000);

  it("a lock held by a writer paused in another PID namespace is never broken: a write here fails at lockTimeoutMs, nothing changed", async () => {
    const baseDir = await mkdtemp(path.join(root, "store-"));
    const key = { namespace: "signal", parts: ["shared", "key0"] };
    const { file } = recordLocation(baseDir, key);
    const keyLock = path.join(path.dirname(file), `.${path.basename(file, ".json")}.lk`);
    // Writes one key without a pause, so its lock is held most of the time.
    const writer = startNode(
      `
      import { FileRecordStore } from "@persist-kit/persist-file";
      const store = new FileRecordStore({ baseDir: process.argv[1] });
      await store.ping();
      process.stdout.write("started\\n");
      for (let round = 0; ; round++) await store.write(${JSON.stringify(key)}, String(round));`,
      [baseDir],
      true,
    );
    expect(await lines(writer)()).toBe("started");
    const writerPid = nodePid(writer);
    // SIGSTOP at a moment the writer holds the lock: try until the lock file is there.
    let held = false;
    for (let attempt = 0; attempt < 200 && !held; attempt++) {
      process.kill(writerPid, "SIGSTOP");
      await new Promise((resolve) => setTimeout(resolve, 20));
      held = existsSync(keyLock);
      if (!held) process.kill(writerPid, "SIGCONT");
    }
    expect(held, "the writer was never paused while holding its lock").toBe(true);
    const store = new FileRecordStore({ baseDir, lockTimeoutMs: 500 });
    try {
      const before = await store.read(key);
      const error = await store.write(key, '"here"').catch((caught: unknown) => caught);
      expect(error).toMatchObject({ name: "BackendUnavailableError", outcome: "not-applied" });
      expect((error as Error).message).toContain("another process holds the key's lock");
      expect(await store.read(key)).toEqual(before);
      expect(existsSync(keyLock)).toBe(true);
    } finally {
      await store.close();
    }
    process.kill(writerPid, "SIGCONT");
    // Resumed, the writer finishes its write and goes on: the lock it held is its own again.
    const resumed = new FileRecordStore({ baseDir });
    try {
      const { revision } = await resumed.read(key);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect((await resumed.read(key)).revision).toBeGreaterThan(revision);
    } finally {
      await resumed.close();
    }
  }, 60_000);
});
