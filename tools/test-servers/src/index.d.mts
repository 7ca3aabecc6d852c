/**
 * Where the tests find their real servers. Each getter looks, in order, at its environment
 * variable, at the `.services/env` file written by `node tools/services/services.mjs up`
 * (the directory can be moved with `PERSIST_KIT_SERVICES_DIR`), and at a Docker engine
 * (testcontainers starts `redis:7`, `postgres:16` or `mongo:7`). When none has the server it
 * rejects with an Error that says what to run or set: a missing server fails the test, it never
 * skips it.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * import { getRedisUrl } from "@persist-kit/tools-test-servers";
 *
 * const redis = new Redis(await getRedisUrl());
 * ```
 */

/** A Redis Cluster node in the shape ioredis' `Cluster` takes. */
export interface RedisClusterNode {
  host: string;
  port: number;
}

/** A redis URL (`REDIS_URL`), such as `redis://127.0.0.1:16379`. The server runs with appendonly yes, appendfsync always. */
export function getRedisUrl(): Promise<string>;

/** The masters of a Redis Cluster (`REDIS_CLUSTER_NODES`, `host:port,host:port,...`). Never from Docker. */
export function getRedisClusterNodes(): Promise<RedisClusterNode[]>;

/** A PostgreSQL URL (`DATABASE_URL`), such as `postgres://postgres@127.0.0.1:15432/postgres`. */
export function getPostgresUrl(): Promise<string>;

/** A MongoDB URL (`MONGO_URL`), such as `mongodb://127.0.0.1:27117/`: FerretDB locally, mongo:7 under Docker. */
export function getMongoUrl(): Promise<string>;

/** PEM files of {@link makeTestCertificates}. */
export interface TestCertificates {
  /** The authority that signed `certFile`. */
  caFile: string;
  /** An authority that signed nothing here: a client trusting only it refuses the server. */
  otherCaFile: string;
  /** The server certificate, for 127.0.0.1 and localhost. */
  certFile: string;
  /** Its private key (mode 0600). */
  keyFile: string;
}

/** Makes a test certificate authority and a server certificate it signed, in `dir`. */
export function makeTestCertificates(dir: string): TestCertificates;
