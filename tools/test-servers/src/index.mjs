// Finds the real servers the tests run against. For each server, in this order:
//   1. its environment variable (REDIS_URL, REDIS_CLUSTER_NODES, DATABASE_URL, MONGO_URL);
//   2. the env file written by `node tools/services/services.mjs up` (.services/env);
//   3. a container started with testcontainers, when a Docker engine answers (not for the cluster);
//   4. otherwise an Error that says what to run or set. A missing server never skips a test.

import { execFileSync } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const SERVICES_UP = "`pnpm services:up` (or `node tools/services/services.mjs up`)";
const PROBE_TIMEOUT_MS = 2000;

const SERVERS = {
  redis: {
    label: "Redis",
    envKey: "REDIS_URL",
    example: "redis://127.0.0.1:6379",
    container: {
      image: "redis:7",
      port: 6379,
      command: ["redis-server", "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
      readyLog: { message: /Ready to accept connections/, times: 1 },
      url: (host, port) => `redis://${host}:${port}`,
    },
  },
  postgres: {
    label: "PostgreSQL",
    envKey: "DATABASE_URL",
    example: "postgres://postgres@127.0.0.1:5432/postgres",
    container: {
      image: "postgres:16",
      port: 5432,
      environment: { POSTGRES_HOST_AUTH_METHOD: "trust" },
      command: ["postgres", "-c", "fsync=on", "-c", "synchronous_commit=on"],
      // The image's entrypoint runs a temporary server for initdb first; the second line is the real one.
      readyLog: { message: /database system is ready to accept connections/, times: 2 },
      url: (host, port) => `postgres://postgres@${host}:${port}/postgres`,
    },
  },
  mongo: {
    label: "MongoDB",
    envKey: "MONGO_URL",
    example: "mongodb://127.0.0.1:27017/",
    container: {
      image: "mongo:7",
      port: 27017,
      readyLog: { message: /Waiting for connections/, times: 1 },
      url: (host, port) => `mongodb://${host}:${port}/`,
    },
  },
  cluster: {
    label: "Redis Cluster",
    envKey: "REDIS_CLUSTER_NODES",
    example: "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
    container: null,
  },
};

/** @type {Map<string, Promise<string>>} */
const addresses = new Map();

/** @type {Promise<{ testcontainers?: any, reason?: string }> | undefined} */
let dockerEngine;

export function getRedisUrl() {
  return serverAddress("redis");
}

export async function getRedisClusterNodes() {
  const nodes = await serverAddress("cluster");
  return parseClusterNodes(nodes);
}

export function getPostgresUrl() {
  return serverAddress("postgres");
}

export function getMongoUrl() {
  return serverAddress("mongo");
}

/** One lookup (and at most one container) per server and process; a failed lookup is retried by the next call. */
function serverAddress(name) {
  let address = addresses.get(name);
  if (!address) {
    address = findServer(SERVERS[name]);
    addresses.set(name, address);
    address.catch(() => addresses.delete(name));
  }
  return address;
}

async function findServer(server) {
  const fromEnvironment = process.env[server.envKey];
  if (fromEnvironment) return fromEnvironment;

  const envFile = servicesEnvFile();
  const recorded = readEnvFile(envFile);
  const fromServices = recorded?.[server.envKey];
  if (fromServices) {
    await assertAnswers(server, fromServices, envFile);
    return fromServices;
  }

  const tried = [
    `${server.envKey} is not set`,
    recorded ? `${envFile} has no ${server.envKey} (started with --only?)` : `${envFile} does not exist`,
  ];
  if (server.container) {
    const engine = await findDockerEngine();
    if (engine.testcontainers) return startContainer(engine.testcontainers, server.container);
    tried.push(`no Docker engine answered (${engine.reason})`);
  } else {
    tried.push("testcontainers cannot start a Redis Cluster");
  }
  throw new Error(
    `No ${server.label} server for the tests: ${tried.join("; ")}. ` +
      `Start the local test servers with ${SERVICES_UP}, or set ${server.envKey}=${server.example}.`,
  );
}

function servicesEnvFile() {
  const stateDir = process.env.PERSIST_KIT_SERVICES_DIR || join(repoRoot, ".services");
  return join(resolve(stateDir), "env");
}

/** The `export KEY=value` lines of the services env file, or null when there is none. */
function readEnvFile(path) {
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  const values = {};
  for (const line of text.split("\n")) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!match) continue;
    const [, key, raw] = match;
    values[key] = raw.startsWith("'") ? raw.slice(1, -1).replaceAll("'\\''", "'") : raw;
  }
  return values;
}

/** The env file outlives its servers after a reboot or a kill; say so instead of letting a client hang. */
async function assertAnswers(server, value, envFile) {
  const targets = server === SERVERS.cluster ? parseClusterNodes(value) : [hostAndPort(value)];
  for (const target of targets) {
    try {
      await probeTcp(target);
    } catch (error) {
      throw new Error(
        `${server.label} at ${value} (from ${envFile}) does not answer: ${error.message}. ` +
          `The test servers are not running; start them with ${SERVICES_UP}.`,
      );
    }
  }
}

function hostAndPort(url) {
  const parsed = new URL(url);
  const defaultPorts = { "redis:": 6379, "rediss:": 6379, "postgres:": 5432, "postgresql:": 5432, "mongodb:": 27017 };
  return { host: parsed.hostname, port: Number(parsed.port) || defaultPorts[parsed.protocol] };
}

function probeTcp({ host, port }) {
  return new Promise((resolvePromise, reject) => {
    const socket = connect({ host, port });
    socket.setTimeout(PROBE_TIMEOUT_MS, () => {
      socket.destroy();
      reject(new Error(`no TCP answer from ${host}:${port} within ${PROBE_TIMEOUT_MS}ms`));
    });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.destroy();
      resolvePromise();
    });
  });
}

function parseClusterNodes(value) {
  return value
    .split(",")
    .map((node) => node.trim())
    .filter(Boolean)
    .map((node) => {
      const separator = node.lastIndexOf(":");
      const port = Number(node.slice(separator + 1));
      if (separator <= 0 || !Number.isInteger(port)) {
        throw new Error(`REDIS_CLUSTER_NODES must be host:port,host:port,...; got ${JSON.stringify(value)}`);
      }
      return { host: node.slice(0, separator), port };
    });
}

/** testcontainers is loaded only here, so runs without Docker never import it. */
function findDockerEngine() {
  dockerEngine ??= (async () => {
    let testcontainers;
    try {
      testcontainers = await import("testcontainers");
    } catch (error) {
      return { reason: `testcontainers could not be loaded: ${error.message}` };
    }
    try {
      await testcontainers.getContainerRuntimeClient();
      return { testcontainers };
    } catch (error) {
      return { reason: error.message };
    }
  })();
  return dockerEngine;
}

/** Started once per test process; testcontainers' reaper removes the container when the process exits. */
async function startContainer({ GenericContainer, Wait }, spec) {
  let container = new GenericContainer(spec.image)
    .withExposedPorts(spec.port)
    .withWaitStrategy(Wait.forLogMessage(spec.readyLog.message, spec.readyLog.times));
  if (spec.command) container = container.withCommand(spec.command);
  if (spec.environment) container = container.withEnvironment(spec.environment);
  const started = await container.start();
  return spec.url(started.getHost(), started.getMappedPort(spec.port));
}

/**
 * A certificate authority made for one test, a server certificate it signed for 127.0.0.1 and
 * localhost, and a second, unrelated authority (for a client that must refuse the server). PEM
 * files in `dir`, made with openssl; the key is readable by its owner alone.
 */
export function makeTestCertificates(dir) {
  const file = (name) => join(dir, name);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  for (const ca of ["ca", "other-ca"]) {
    openssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=persist-kit test ${ca}`,
      "-keyout",
      file(`${ca}.key`),
      "-out",
      file(`${ca}.pem`),
    );
  }
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    file("server.key"),
    "-out",
    file("server.csr"),
  );
  writeFileSync(file("server.ext"), "subjectAltName = IP:127.0.0.1, DNS:localhost\n");
  openssl(
    "x509",
    "-req",
    "-in",
    file("server.csr"),
    "-CA",
    file("ca.pem"),
    "-CAkey",
    file("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    file("server.ext"),
    "-out",
    file("server.pem"),
  );
  chmodSync(file("server.key"), 0o600);
  return {
    caFile: file("ca.pem"),
    otherCaFile: file("other-ca.pem"),
    certFile: file("server.pem"),
    keyFile: file("server.key"),
  };
}
