#!/usr/bin/env node
// Starts and stops the real servers the tests use, without Docker: redis-server and PostgreSQL
// from Debian packages, FerretDB (a MongoDB wire-protocol server on SQLite) built from
// tools/ferretdb, and a three-master Redis Cluster. Node built-ins only, so it runs before
// `pnpm install`.
//
//   node tools/services/services.mjs up [--only redis,postgres,mongo,cluster]
//   node tools/services/services.mjs status | env | down
//   node tools/services/services.mjs restart redis|postgres|mongo [--kill]
//
// `up` prints the env file on stdout (progress and timings go to stderr), so
// `eval "$(node tools/services/services.mjs up)"` works. See README.md beside this file.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect, createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { basename, delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SERVER_NAMES = ["redis", "postgres", "mongo", "cluster"];
const RESTARTABLE = ["redis", "postgres", "mongo"];

/** Uncommon ports first, so the servers do not clash with ones a developer already runs. */
const PREFERRED_PORTS = {
  redis: 16379,
  postgres: 15432,
  mongo: 27117,
  cluster: [17001, 17002, 17003],
};

/** Redis Cluster also listens on port + 10000 for its node-to-node bus. */
const CLUSTER_BUS_OFFSET = 10000;

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const DATA_DIR_PREFIX = "persist-kit-services-";
const HOST = "127.0.0.1";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const stateDir = resolve(process.env.PERSIST_KIT_SERVICES_DIR || join(repoRoot, ".services"));
const stateFile = join(stateDir, "state.json");
const envFile = join(stateDir, "env");
const ferretdbSourceDir = join(repoRoot, "tools", "ferretdb");
const isRoot = process.getuid?.() === 0;

class ServiceError extends Error {
  constructor(message, logFile) {
    super(logFile ? `${message}\n${logTail(logFile)}` : message);
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

async function up(only) {
  const startedAt = Date.now();
  let state = readState();

  if (state) {
    const unhealthy = await unhealthyServers(state);
    if (unhealthy.length > 0) {
      note(`recorded servers not answering (${unhealthy.join(", ")}): stopping the rest, starting afresh`);
      await stopAll(state);
      state = null;
    }
  }

  const missing = only.filter((name) => !state?.servers[name]);
  if (missing.length === 0) {
    note(`already up (${Object.keys(state.servers).join(", ")}), state in ${stateDir}`);
    writeEnvFile(state);
    process.stdout.write(readFileSync(envFile, "utf8"));
    return;
  }

  await installMissingPackages(missing);

  const isFreshState = !state;
  if (!state) state = createState();
  const runningBefore = new Set(Object.keys(state.servers));
  const takenPorts = new Set(recordedPorts(state));

  // The FerretDB build is the slow part of a cold start; the other servers start meanwhile.
  const starts = missing.map((name) => SERVER_STARTERS[name](state, takenPorts));
  const results = await Promise.allSettled(starts);
  const failures = results.filter((result) => result.status === "rejected").map((result) => result.reason);

  if (failures.length > 0) {
    const startedNow = Object.keys(state.servers).filter((name) => !runningBefore.has(name));
    await stopServers(state, startedNow);
    if (isFreshState) removeState(state);
    else saveState(state);
    throw new ServiceError(failures.map((error) => error.message).join("\n\n"));
  }

  saveState(state);
  writeEnvFile(state);
  note(`up in ${seconds(Date.now() - startedAt)}; env file: ${envFile}`);
  process.stdout.write(readFileSync(envFile, "utf8"));
}

async function down() {
  const state = readState();
  if (!state) {
    note(`nothing to stop: no state in ${stateDir}`);
    return;
  }
  await stopAll(state);
  note("down");
}

async function status() {
  const state = readState();
  if (!state) {
    note(`no services recorded in ${stateDir}`);
    return false;
  }
  let allRunning = true;
  for (const [name, server] of Object.entries(state.servers)) {
    const pids = server.processes.map((proc) => currentPid(proc));
    const running = pids.every((pid) => pid !== null);
    allRunning &&= running;
    const where = server.ports.map((port) => `${HOST}:${port}`).join(",");
    const what = running ? `running (pid ${pids.join(",")})` : "NOT RUNNING";
    process.stdout.write(`${name.padEnd(9)} ${where.padEnd(48)} ${what}\n`);
  }
  process.stdout.write(`data dir: ${state.dataDir}\n`);
  return allRunning;
}

function printEnv() {
  if (!existsSync(envFile)) {
    throw new ServiceError(`no env file at ${envFile}: run \`node tools/services/services.mjs up\` first`);
  }
  process.stdout.write(readFileSync(envFile, "utf8"));
}

/** Stops one server (gracefully, or with SIGKILL to its process group for a crash) and starts it again with the same data. */
async function restart(name, { kill }) {
  const state = readState();
  const server = state?.servers[name];
  if (!server) throw new ServiceError(`${name} is not up (no state in ${stateDir})`);
  const proc = server.processes[0];
  const pid = currentPid(proc);
  const startedAt = Date.now();
  if (pid !== null) {
    const children = childPids(pid);
    if (kill) await killProcessGroup(pid);
    else await stopProcess(pid, proc, server.stopSignal);
    // A zombie still "exists": PostgreSQL would take it for a live postmaster owning the data dir.
    await waitUntilReaped([pid, ...children], 10_000);
    if ([pid, ...children].some(exists)) throw new ServiceError(`${name}: pid ${pid} was stopped but never reaped`);
  }
  proc.pid = spawnStartScript(proc);
  saveState(state);
  await waitUntilReady(name, server);
  note(`${name} restarted${kill ? " after SIGKILL" : ""} in ${seconds(Date.now() - startedAt)} (pid ${proc.pid})`);
}

// ---------------------------------------------------------------------------------------------
// Installing what is missing (Debian packages, FerretDB build)

async function installMissingPackages(servers) {
  const packages = [];
  if (servers.includes("redis") || servers.includes("cluster")) {
    if (!findOnPath("redis-server")) packages.push("redis-server");
    if (!findOnPath("redis-cli")) packages.push("redis-tools");
  }
  if (servers.includes("postgres") && !findPostgresBinDir()) packages.push("postgresql");
  if (packages.length === 0) return;

  if (!isRoot) {
    throw new ServiceError(
      `missing ${packages.join(", ")}: install them (sudo apt-get install ${packages.join(" ")}) or run this as root`,
    );
  }
  const startedAt = Date.now();
  note(`installing ${packages.join(" ")} with apt-get`);

  // Debian's maintainer scripts start a freshly installed server as a system service; a
  // policy-rc.d that says 101 stops that, so only the servers started here ever run.
  const policyFile = "/usr/sbin/policy-rc.d";
  const addedPolicy = !existsSync(policyFile);
  if (addedPolicy) writeFileSync(policyFile, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  try {
    const aptEnv = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const lockWait = ["-o", "DPkg::Lock::Timeout=300"];
    await runAsync("apt-get", ["update", "-q", ...lockWait], { env: aptEnv });
    await runAsync("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...lockWait, ...packages], {
      env: aptEnv,
    });
  } finally {
    if (addedPolicy) rmSync(policyFile, { force: true });
  }
  note(`installed ${packages.join(" ")} in ${seconds(Date.now() - startedAt)}`);
}

const FERRETDB_BUILD_FLAGS = ["-trimpath", "-buildvcs=false", "-mod=readonly", "-tags", "ferretdb_no_postgresql"];

/** Builds tools/ferretdb once per source version into the user's cache; later runs reuse the binary. */
async function ferretdbBinary() {
  const sourceFiles = ["go.mod", "go.sum", "main.go"];
  const hash = createHash("sha256");
  for (const file of sourceFiles) {
    hash.update(`${file}\0${readFileSync(join(ferretdbSourceDir, file), "utf8")}\0`);
  }
  hash.update(FERRETDB_BUILD_FLAGS.join(" "));
  const goMod = readFileSync(join(ferretdbSourceDir, "go.mod"), "utf8");
  const version = /github\.com\/FerretDB\/FerretDB (v\S+)/.exec(goMod)?.[1] ?? "unknown";
  const cacheRoot = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  const buildDir = join(cacheRoot, "persist-kit", `ferretdb-${version}-${hash.digest("hex").slice(0, 16)}`);
  const binary = join(buildDir, "ferretdb");

  if (isExecutable(binary)) {
    note(`ferretdb  reusing ${binary}`);
    return binary;
  }
  if (!findOnPath("go")) {
    throw new ServiceError(
      "mongo: building FerretDB needs Go 1.24 or newer on PATH (https://go.dev/dl or the golang Debian package)",
    );
  }
  const startedAt = Date.now();
  note(`ferretdb  building ${version} (first run only) into ${buildDir}`);
  mkdirSync(buildDir, { recursive: true });
  // Built under a temporary name and renamed, so an interrupted build never leaves a binary that looks reusable.
  const partial = `${binary}.partial-${process.pid}`;
  await runAsync("go", ["build", ...FERRETDB_BUILD_FLAGS, "-o", partial, "."], {
    cwd: ferretdbSourceDir,
    env: { ...process.env, CGO_ENABLED: "0" },
  });
  renameSync(partial, binary);
  note(`ferretdb  built in ${seconds(Date.now() - startedAt)}`);
  return binary;
}

// ---------------------------------------------------------------------------------------------
// Starting each server

const SERVER_STARTERS = {
  redis: startRedis,
  postgres: startPostgres,
  mongo: startMongo,
  cluster: startCluster,
};

async function startRedis(state, takenPorts) {
  const startedAt = Date.now();
  const port = await pickPort(PREFERRED_PORTS.redis, takenPorts);
  const dir = makeDir(state.dataDir, "redis");
  const bin = findOnPath("redis-server");
  const config = join(dir, "redis.conf");
  writeFileSync(config, redisConfig(port, dir, []));
  const proc = newProcess(dir, "redis-server", [bin, config]);

  state.servers.redis = { ports: [port], bin, config, stopSignal: "SIGTERM", processes: [proc] };
  proc.pid = spawnStartScript(proc);
  saveState(state);
  await waitUntilReady("redis", state.servers.redis);
  note(`redis     ${HOST}:${port} ready in ${seconds(Date.now() - startedAt)}`);
}

async function startCluster(state, takenPorts) {
  const startedAt = Date.now();
  const bin = findOnPath("redis-server");
  const ports = [];
  for (const preferred of PREFERRED_PORTS.cluster) {
    ports.push(await pickPort(preferred, takenPorts, CLUSTER_BUS_OFFSET));
  }
  const processes = ports.map((port) => {
    const dir = makeDir(state.dataDir, "cluster", String(port));
    const config = join(dir, "redis.conf");
    writeFileSync(
      config,
      redisConfig(port, dir, ["cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 5000"]),
    );
    return newProcess(dir, "redis-server", [bin, config]);
  });

  state.servers.cluster = { ports, bin, stopSignal: "SIGTERM", processes };
  for (const proc of processes) proc.pid = spawnStartScript(proc);
  saveState(state);
  await waitFor("cluster", processes, async () => {
    for (const port of ports) expectReply(await redisCommand(port, ["PING"]), "PONG");
  });

  const nodes = ports.map((port) => `${HOST}:${port}`);
  const createArgs = ["--cluster", "create", ...nodes, "--cluster-replicas", "0", "--cluster-yes"];
  await runAsync(findOnPath("redis-cli"), createArgs);
  await waitUntilReady("cluster", state.servers.cluster);
  note(`cluster   ${nodes.join(",")} ready in ${seconds(Date.now() - startedAt)}`);
}

async function startPostgres(state, takenPorts) {
  const startedAt = Date.now();
  const binDir = findPostgresBinDir();
  const port = await pickPort(PREFERRED_PORTS.postgres, takenPorts);
  const dir = makeDir(state.dataDir, "postgres");
  const dataDir = join(dir, "data");
  const socketDir = join(dir, "socket");
  // initdb and postgres refuse to run as root: as root they run as the `postgres` user of the
  // Debian package, which must own the data and socket directories.
  const owner = isRoot ? systemUser("postgres") : null;
  for (const path of [dataDir, socketDir]) {
    mkdirSync(path, { mode: 0o700 });
    if (owner) chownSync(path, owner.uid, owner.gid);
  }

  // --no-sync only skips flushing initdb's own files; the server itself runs with fsync on.
  await runAsync(
    ...asPostgresUser(join(binDir, "initdb"), [
      "-D",
      dataDir,
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync",
      "--no-instructions",
    ]),
    { cwd: dir },
  );
  const initdbDone = Date.now();
  writeFileSync(join(dataDir, "postgresql.conf"), postgresConfig(port, socketDir), { flag: "a" });

  const proc = newProcess(dir, "postgres", [join(binDir, "postgres"), "-D", dataDir], { asPostgres: Boolean(owner) });
  // SIGINT is PostgreSQL's "fast" shutdown (pg_ctl stop -m fast); SIGTERM would wait for clients to disconnect.
  state.servers.postgres = { ports: [port], binDir, dataDir, stopSignal: "SIGINT", processes: [proc] };
  proc.pid = spawnStartScript(proc);
  saveState(state);
  await waitUntilReady("postgres", state.servers.postgres);
  note(
    `postgres  ${HOST}:${port} ready in ${seconds(Date.now() - startedAt)} (initdb ${seconds(initdbDone - startedAt)})`,
  );
}

async function startMongo(state, takenPorts) {
  const bin = await ferretdbBinary();
  const startedAt = Date.now();
  const port = await pickPort(PREFERRED_PORTS.mongo, takenPorts);
  const dir = makeDir(state.dataDir, "ferretdb");
  const sqliteDir = makeDir(dir, "sqlite");
  const proc = newProcess(dir, "ferretdb", [
    bin,
    "-listen-addr",
    `${HOST}:${port}`,
    "-sqlite-dir",
    sqliteDir,
    "-log-level",
    "info",
  ]);

  state.servers.mongo = { ports: [port], bin, sqliteDir, stopSignal: "SIGTERM", processes: [proc] };
  proc.pid = spawnStartScript(proc);
  saveState(state);
  await waitUntilReady("mongo", state.servers.mongo);
  note(`mongo     ${HOST}:${port} (FerretDB) ready in ${seconds(Date.now() - startedAt)}`);
}

function redisConfig(port, dir, extraLines) {
  return [
    `port ${port}`,
    `bind ${HOST}`,
    "daemonize no",
    `dir ${dir}`,
    'logfile ""',
    // Every acknowledged write is in the append-only file and fsynced before the reply.
    "appendonly yes",
    "appendfsync always",
    'save ""',
    ...extraLines,
    "",
  ].join("\n");
}

function postgresConfig(port, socketDir) {
  return [
    "",
    "# persist-kit test server",
    `listen_addresses = '${HOST}'`,
    `port = ${port}`,
    `unix_socket_directories = '${socketDir}'`,
    "fsync = on",
    "synchronous_commit = on",
    "full_page_writes = on",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Processes: start scripts, pid files, readiness, stopping

/**
 * Every server runs through a start script in its directory. The script records its pid and
 * execs the server, so the pid file always names the server itself, also after a test restarted
 * it with the same script.
 */
function newProcess(dir, command, argv, { asPostgres = false } = {}) {
  const script = join(dir, "start.sh");
  const pidFile = join(dir, "server.pid");
  const log = join(dir, "server.log");
  const dropToPostgres = asPostgres
    ? ['if [ "$(id -u)" = 0 ]; then set -- setpriv --reuid=postgres --regid=postgres --init-groups --; else set --; fi']
    : ["set --"];
  const lines = [
    "#!/bin/sh",
    `# Starts ${command} in the foreground with the settings services.mjs chose.`,
    `cd ${shellQuote(dir)}`,
    `echo $$ > ${shellQuote(pidFile)}`,
    ...dropToPostgres,
    `exec "$@" ${argv.map(shellQuote).join(" ")} >> ${shellQuote(log)} 2>&1`,
    "",
  ];
  writeFileSync(script, lines.join("\n"), { mode: 0o755 });
  return { command, script, pidFile, log, pid: null };
}

/** Exit status of the servers this process started, by pid: the sure sign of a failed start. */
const exitedChildren = new Map();

function spawnStartScript(proc) {
  const child = spawn("/bin/sh", [proc.script], { cwd: dirname(proc.script), detached: true, stdio: "ignore" });
  child.on("exit", (code, signal) => exitedChildren.set(child.pid, signal ?? `exit code ${code}`));
  child.unref();
  return child.pid;
}

/** The pid of a server that is running now: from its pid file (a restart may have changed it), else the recorded one. */
function currentPid(proc) {
  const fromFile = Number.parseInt(readText(proc.pidFile) ?? "", 10);
  for (const pid of [fromFile, proc.pid]) {
    if (isServerProcess(pid, proc)) return pid;
  }
  return null;
}

/** True when pid is alive and still runs this server (so a reused pid is never signalled). */
function isServerProcess(pid, proc) {
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return false;
  const commandLine = readText(`/proc/${pid}/cmdline`);
  if (commandLine === null) return process.platform !== "linux";
  // Empty for an instant while the start script execs the server.
  if (commandLine === "") return true;
  // Until the start script has exec'd, the process is still /bin/sh running it.
  return commandLine.includes(proc.command) || commandLine.includes(proc.script);
}

/** Alive and not a zombie: a killed server whose parent has not reaped it yet counts as gone. */
function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (error.code !== "EPERM") return false;
  }
  const stat = readText(`/proc/${pid}/stat`);
  return stat === null || !/\) [ZX] /.test(stat);
}

/** Waits for a protocol-level answer from the server, not just an open port. */
function waitUntilReady(name, server) {
  return waitFor(name, server.processes, () => checkAnswers(name, server));
}

async function checkAnswers(name, server) {
  switch (name) {
    case "redis":
      return expectReply(await redisCommand(server.ports[0], ["PING"]), "PONG");
    case "cluster":
      for (const port of server.ports) {
        const info = await redisCommand(port, ["CLUSTER", "INFO"]);
        if (!info.includes("cluster_state:ok")) throw new Error(`node ${port}: ${info.split("\r\n")[0]}`);
      }
      return;
    case "postgres": {
      const sql = "select current_setting('fsync') || ',' || current_setting('synchronous_commit')";
      return expectReply(await postgresQuery(server, sql), "on,on");
    }
    case "mongo":
      return mongoPing(server.ports[0]);
  }
}

async function waitFor(name, processes, check) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = null;
  while (Date.now() < deadline) {
    for (const proc of processes) {
      const exitStatus = exitedChildren.get(proc.pid) ?? (currentPid(proc) === null ? "gone" : null);
      if (exitStatus) throw new ServiceError(`${name}: the server exited during start-up (${exitStatus})`, proc.log);
    }
    try {
      await check();
      return;
    } catch (error) {
      lastError = error;
    }
    await sleep(200);
  }
  throw new ServiceError(
    `${name}: no answer within ${READY_TIMEOUT_MS / 1000}s (last error: ${lastError?.message})`,
    processes[0].log,
  );
}

async function stopAll(state) {
  await stopServers(state, Object.keys(state.servers));
  removeState(state);
}

async function stopServers(state, names) {
  const stops = [];
  const stopped = [];
  for (const name of names) {
    const server = state.servers[name];
    if (!server) continue;
    for (const proc of server.processes) {
      const pids = new Set([proc.pid, Number.parseInt(readText(proc.pidFile) ?? "", 10)]);
      for (const pid of pids) {
        if (!isServerProcess(pid, proc)) continue;
        stopped.push(pid);
        stops.push(stopProcess(pid, proc, server.stopSignal));
      }
    }
    delete state.servers[name];
  }
  await Promise.all(stops);
  await waitUntilReaped(stopped, 10_000);
}

/**
 * A stopped server stays a zombie until its parent, init, reaps it; some inits only do that every
 * few seconds. Waiting for it lets callers rely on kill(pid, 0) failing with ESRCH afterwards.
 */
async function waitUntilReaped(pids, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(exists) && Date.now() < deadline) await sleep(50);
}

function exists(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}

async function stopProcess(pid, proc, signal) {
  signalProcess(pid, signal);
  if (await waitForExit(pid, STOP_TIMEOUT_MS)) return;
  note(`pid ${pid} (${proc.command}) ignored ${signal} for ${STOP_TIMEOUT_MS / 1000}s: SIGKILL`);
  await killProcessGroup(pid);
}

/**
 * SIGKILL to the server and its children at once, like a machine crash. PostgreSQL backends put
 * themselves in their own process groups, and a backend left alive keeps the shared memory
 * that stops a new postmaster from starting.
 */
async function killProcessGroup(pid) {
  const victims = [pid, ...childPids(pid)];
  signalProcess(-pid, "SIGKILL");
  for (const victim of victims) signalProcess(victim, "SIGKILL");
  for (const victim of victims) {
    if (!(await waitForExit(victim, 5000))) throw new ServiceError(`pid ${victim} survived SIGKILL`);
  }
}

function childPids(pid) {
  const children = [];
  for (const entry of existsSync("/proc") ? readdirSync("/proc") : []) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readText(`/proc/${entry}/stat`);
    if (stat === null) continue;
    const parentPid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (parentPid === pid) children.push(Number(entry));
  }
  return children;
}

function signalProcess(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if (error.code !== "ESRCH") throw error;
  }
}

async function waitForExit(pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

// ---------------------------------------------------------------------------------------------
// Protocol-level checks

/** One RESP command over a fresh TCP connection; resolves with the reply as text. */
function redisCommand(port, args, timeoutMs = 2000) {
  return new Promise((resolvePromise, reject) => {
    const socket = connect({ host: HOST, port });
    let received = Buffer.alloc(0);
    const fail = (error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`timeout after ${timeoutMs}ms`)));
    socket.on("error", fail);
    socket.on("connect", () => {
      const parts = [`*${args.length}\r\n`];
      for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
      socket.write(parts.join(""));
    });
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk]);
      const reply = parseRespReply(received);
      if (reply === undefined) return;
      socket.destroy();
      if (reply instanceof Error) reject(reply);
      else resolvePromise(reply);
    });
  });
}

/** A simple string, error, integer or bulk string reply; undefined while incomplete. */
function parseRespReply(buffer) {
  const lineEnd = buffer.indexOf("\r\n");
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buffer[0]);
  const line = buffer.subarray(1, lineEnd).toString();
  if (type === "+" || type === ":") return line;
  if (type === "-") return new Error(line);
  if (type === "$") {
    const length = Number(line);
    if (length < 0) return "";
    if (buffer.length < lineEnd + 2 + length + 2) return undefined;
    return buffer.subarray(lineEnd + 2, lineEnd + 2 + length).toString();
  }
  return new Error(`unexpected reply ${JSON.stringify(buffer.subarray(0, 40).toString())}`);
}

/** Sends MongoDB's `{ping: 1}` as an OP_MSG and expects `{ok: 1.0}` back. */
function mongoPing(port, timeoutMs = 2000) {
  const OP_MSG = 2013;
  const ping = Buffer.concat([Buffer.from("\x10ping\0"), int32(1)]); // int32 element ping: 1
  const database = Buffer.concat([Buffer.from("\x02$db\0"), int32(6), Buffer.from("admin\0")]); // string $db: "admin"
  const bsonElements = Buffer.concat([ping, database]);
  const document = Buffer.concat([int32(4 + bsonElements.length + 1), bsonElements, Buffer.from([0])]);
  const body = Buffer.concat([int32(0), Buffer.from([0]), document]); // flagBits, section kind 0
  const header = Buffer.concat([int32(16 + body.length), int32(1), int32(0), int32(OP_MSG)]);
  const okDouble = Buffer.from([0x01, ...Buffer.from("ok\0"), 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);

  return new Promise((resolvePromise, reject) => {
    const socket = connect({ host: HOST, port });
    let received = Buffer.alloc(0);
    const fail = (error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`timeout after ${timeoutMs}ms`)));
    socket.on("error", fail);
    socket.on("connect", () => socket.write(Buffer.concat([header, body])));
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4 || received.length < received.readInt32LE(0)) return;
      socket.destroy();
      if (received.readInt32LE(12) === OP_MSG && received.includes(okDouble)) resolvePromise();
      else reject(new Error("ping did not answer {ok: 1}"));
    });
  });
}

function int32(value) {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32LE(value);
  return buffer;
}

async function postgresQuery(server, sql) {
  const output = await runAsync(
    join(server.binDir, "psql"),
    ["-h", HOST, "-p", String(server.ports[0]), "-U", "postgres", "-d", "postgres", "-X", "-tA", "-c", sql],
    { env: { ...process.env, PGCONNECT_TIMEOUT: "2" }, quiet: true },
  );
  return output.trim();
}

function expectReply(actual, expected) {
  if (actual !== expected) throw new Error(`expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

async function unhealthyServers(state) {
  const unhealthy = [];
  for (const [name, server] of Object.entries(state.servers)) {
    const running = server.processes.every((proc) => currentPid(proc) !== null);
    if (!running) {
      unhealthy.push(name);
      continue;
    }
    try {
      await checkAnswers(name, server);
    } catch {
      unhealthy.push(name);
    }
  }
  return unhealthy;
}

// ---------------------------------------------------------------------------------------------
// Ports

/** The preferred port when it (and its cluster bus port) is free, else the next free one above it. */
async function pickPort(preferred, takenPorts, busOffset = 0) {
  for (let port = preferred; port < preferred + 1000 && port + busOffset <= 65535; port++) {
    const isTaken = () => takenPorts.has(port) || (busOffset && takenPorts.has(port + busOffset));
    if (isTaken()) continue;
    if (!(await isPortFree(port)) || (busOffset && !(await isPortFree(port + busOffset)))) continue;
    // Servers start in parallel: another one may have claimed the port during the await.
    if (isTaken()) continue;
    takenPorts.add(port);
    if (busOffset) takenPorts.add(port + busOffset);
    return port;
  }
  throw new ServiceError(`no free port in ${preferred}-${preferred + 999} on ${HOST}`);
}

function isPortFree(port) {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once("error", () => resolvePromise(false));
    server.listen({ host: HOST, port, exclusive: true }, () => server.close(() => resolvePromise(true)));
  });
}

function recordedPorts(state) {
  const ports = [];
  for (const [name, server] of Object.entries(state.servers)) {
    for (const port of server.ports) {
      ports.push(port);
      if (name === "cluster") ports.push(port + CLUSTER_BUS_OFFSET);
    }
  }
  return ports;
}

// ---------------------------------------------------------------------------------------------
// State and env file

function createState() {
  const dataDir = mkdtempSync(join(tmpdir(), DATA_DIR_PREFIX));
  // mkdtemp makes it 0700; the postgres user must be able to reach its own data dir inside.
  chmodSync(dataDir, 0o755);
  return { dataDir, createdAt: new Date().toISOString(), servers: {} };
}

function readState() {
  const text = readText(stateFile);
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ServiceError(
      `unreadable state file ${stateFile} (${error.message}); stop its servers by hand and delete it`,
    );
  }
}

function saveState(state) {
  mkdirSync(stateDir, { recursive: true });
  const partial = `${stateFile}.${process.pid}.tmp`;
  writeFileSync(partial, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(partial, stateFile);
}

function removeState(state) {
  // Guard against a hand-edited state file pointing somewhere else.
  if (state.dataDir && basename(state.dataDir).startsWith(DATA_DIR_PREFIX)) {
    rmSync(state.dataDir, { recursive: true, force: true });
  }
  rmSync(stateFile, { force: true });
  rmSync(envFile, { force: true });
}

/** Each line of the env file, with the comment that documents it. README.md lists the same. */
function envEntries(state) {
  const entries = [
    ["PERSIST_KIT_SERVICES_DIR", stateDir, "state dir of services.mjs (state.json, this file)"],
    ["PERSIST_KIT_SERVICES_DATA_DIR", state.dataDir, "temporary data dir of all servers, removed by `down`"],
  ];
  const { redis, cluster, postgres, mongo } = state.servers;
  if (redis) {
    const [proc] = redis.processes;
    entries.push(
      ["REDIS_URL", `redis://${HOST}:${redis.ports[0]}`, "single redis-server, appendonly yes, appendfsync always"],
      ["REDIS_SERVER_BIN", redis.bin, "redis-server binary"],
      ["REDIS_CONF", redis.config, "its config file"],
      ["REDIS_START_SCRIPT", proc.script, "starts it again in the foreground (sh; execs, so its pid is the server's)"],
      ["REDIS_PID_FILE", proc.pidFile, "pid of the running redis-server, rewritten by the start script"],
    );
  }
  if (cluster) {
    entries.push([
      "REDIS_CLUSTER_NODES",
      cluster.ports.map((port) => `${HOST}:${port}`).join(","),
      "Redis Cluster, three masters, no replicas",
    ]);
  }
  if (postgres) {
    const [proc] = postgres.processes;
    entries.push(
      [
        "DATABASE_URL",
        `postgres://postgres@${HOST}:${postgres.ports[0]}/postgres`,
        "PostgreSQL, trust auth on loopback, fsync on, synchronous_commit on",
      ],
      ["PG_BIN_DIR", postgres.binDir, "PostgreSQL binaries (postgres, psql, pg_ctl)"],
      [
        "PG_DATA_DIR",
        postgres.dataDir,
        "data dir; postgresql.conf in it has every setting (owned by the postgres user)",
      ],
      ["PG_START_SCRIPT", proc.script, "starts it again in the foreground (as the postgres user when run as root)"],
      ["PG_PID_FILE", proc.pidFile, "pid of the running postmaster, rewritten by the start script"],
    );
  }
  if (mongo) {
    const [proc] = mongo.processes;
    entries.push(
      ["MONGO_URL", `mongodb://${HOST}:${mongo.ports[0]}/`, "FerretDB on SQLite (MongoDB wire protocol)"],
      ["FERRETDB_BIN", mongo.bin, "FerretDB binary built from tools/ferretdb"],
      ["FERRETDB_SQLITE_DIR", mongo.sqliteDir, "its SQLite data dir"],
      ["FERRETDB_START_SCRIPT", proc.script, "starts it again in the foreground"],
      ["FERRETDB_PID_FILE", proc.pidFile, "pid of the running FerretDB, rewritten by the start script"],
    );
  }
  return entries;
}

function writeEnvFile(state) {
  const lines = [
    "# Test servers started by `node tools/services/services.mjs up`; stop them with `... down`.",
    "# Load into a shell with: set -a; . .services/env",
    "",
  ];
  for (const [key, value, comment] of envEntries(state)) {
    lines.push(`# ${comment}`, `export ${key}=${shellQuote(value)}`);
  }
  writeFileSync(envFile, `${lines.join("\n")}\n`);
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function findOnPath(command) {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && isExecutable(join(dir, command))) return join(dir, command);
  }
  return null;
}

/** The newest Debian PostgreSQL under /usr/lib/postgresql/<version>/bin. */
function findPostgresBinDir() {
  const root = "/usr/lib/postgresql";
  const versions = (existsSync(root) ? readdirSync(root) : [])
    .filter(
      (version) =>
        isExecutable(join(root, version, "bin", "postgres")) && isExecutable(join(root, version, "bin", "initdb")),
    )
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return versions.length > 0 ? join(root, versions[0], "bin") : null;
}

function asPostgresUser(command, args) {
  if (!isRoot) return [command, args];
  return ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", command, ...args]];
}

function systemUser(name) {
  const line = (readText("/etc/passwd") ?? "").split("\n").find((entry) => entry.startsWith(`${name}:`));
  if (!line) throw new ServiceError(`postgres: no \`${name}\` system user (the Debian postgresql package creates it)`);
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

function makeDir(...parts) {
  const dir = join(...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function readText(path) {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

function logTail(file, lines = 20) {
  const text = readText(file);
  if (text === null) return `(no log at ${file})`;
  const tail = text.trimEnd().split("\n").slice(-lines).join("\n");
  return `--- last lines of ${file} ---\n${tail}`;
}

function shellQuote(value) {
  const text = String(value);
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Runs a command, collecting its output; a non-zero exit becomes an error with the output's tail. */
function runAsync(command, args, { cwd, env, quiet = false } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    const output = [];
    child.stdout.on("data", (chunk) => output.push(chunk));
    child.stderr.on("data", (chunk) => output.push(chunk));
    child.on("error", (error) => reject(new ServiceError(`${command}: ${error.message}`)));
    child.on("close", (code, signal) => {
      const text = Buffer.concat(output).toString();
      if (code === 0) return resolvePromise(text);
      const tail = quiet
        ? text.trim().split("\n").slice(-3).join(" | ")
        : `\n${text.trimEnd().split("\n").slice(-30).join("\n")}`;
      reject(new ServiceError(`\`${[command, ...args].join(" ")}\` failed (${signal ?? `exit ${code}`}): ${tail}`));
    });
  });
}

function note(message) {
  process.stderr.write(`[services] ${message}\n`);
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)}s`;
}

function sleep(ms) {
  return new Promise((resolvePromise) => setTimeout(resolvePromise, ms));
}

// ---------------------------------------------------------------------------------------------

function parseOnly(args) {
  const index = args.findIndex((arg) => arg === "--only" || arg.startsWith("--only="));
  if (index < 0) return SERVER_NAMES;
  const value = args[index].startsWith("--only=") ? args[index].slice("--only=".length) : args[index + 1];
  const names = (value ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !SERVER_NAMES.includes(name));
  if (names.length === 0 || unknown.length > 0) {
    throw new ServiceError(
      `--only takes a comma-separated list of ${SERVER_NAMES.join(", ")}; got ${JSON.stringify(value ?? "")}`,
    );
  }
  return names;
}

const USAGE = `usage: node tools/services/services.mjs <command>
  up [--only redis,postgres,mongo,cluster]  install what is missing, start the servers, print the env file
  down                                      stop what up started and remove its data dir
  status                                    which recorded servers are running (exit 1 if any is not)
  env                                       print the env file (shell-sourcable)
  restart redis|postgres|mongo [--kill]     stop (or SIGKILL) one server and start it on the same data
state dir: ${stateDir} (PERSIST_KIT_SERVICES_DIR)`;

async function main(argv) {
  const [command, ...args] = argv;
  switch (command) {
    case "up":
      return up(parseOnly(args));
    case "down":
      return down();
    case "status":
      if (!(await status())) process.exitCode = 1;
      return;
    case "env":
      return printEnv();
    case "restart": {
      const name = args.find((arg) => !arg.startsWith("--"));
      if (!RESTARTABLE.includes(name)) {
        throw new ServiceError(`restart takes one of ${RESTARTABLE.join(", ")}\n${USAGE}`);
      }
      return restart(name, { kill: args.includes("--kill") });
    }
    default:
      process.stderr.write(`${USAGE}\n`);
      process.exitCode = command === undefined || command === "--help" || command === "-h" ? 0 : 2;
  }
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`[services] error: ${error instanceof ServiceError ? error.message : error.stack}\n`);
  process.exitCode = 1;
});
