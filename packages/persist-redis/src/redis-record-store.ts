import {
  assertExclusiveOptions,
  BaseRecordStore,
  CorruptDataError,
  decodeStoredText,
  InvalidOptionError,
  type ListedRecord,
  type ListRequest,
  type PersistError,
  type PersistErrorContext,
  type RecordChange,
  type RecordCondition,
  type RecordEntry,
  type RecordKey,
  type RecordPage,
  type RecordRead,
  type RecordStoreCapabilities,
  RetryingOnce,
  recordContext,
  reportWarning,
  wholeNumberOption,
  wrapDriverError,
} from "@persist-kit/core";
import type { ClusterNode, ClusterOptions, Redis, RedisOptions } from "ioredis";
import { issueBefore } from "./command-deadline.js";
import { type RedisClient, RedisConnection } from "./connection.js";
import {
  type ChangePlan,
  checkFsyncReply,
  checkWaitReply,
  type DurabilityWaits,
  dataServers,
  describeServers,
  durabilityRisks,
  planChange,
  type RedisDurabilityReport,
  type RedisServerDurability,
  readServerDurability,
} from "./durability.js";
import { credentialRefusal, REDIS_ERROR_RULES, redactCommandArguments, replyCode } from "./errors.js";
import { decodeListCursor, encodeListCursor, type ListPosition } from "./list-cursor.js";
import {
  assertPrefix,
  DEFAULT_PREFIX,
  floorRedisKey,
  parseRecordRedisKey,
  recordKeyPattern,
  recordRedisKey,
} from "./redis-keys.js";
import {
  CORRUPT_FLOOR,
  CORRUPT_RECORD,
  conditionArguments,
  DELETE_RECORD,
  FLOOR_AT_MAX_REVISION,
  queueScript,
  RECORD_AT_MAX_REVISION,
  type RecordScript,
  readAbsentRecord,
  runScript,
  type ScriptReply,
  scriptPipeline,
  ttlArgument,
  WRITE_MANY_RECORDS,
  WRITE_RECORD,
} from "./scripts.js";
import { MAX_STORED_REVISION, parseFloor, parseStoredRecord } from "./stored-record.js";

const BACKEND = "redis";
// Keys asked for per SCAN call (a hint to the server): at least this many, so a sparse pattern
// on a large keyspace needs few round trips; at most the larger bound, so a call stays short.
const MIN_SCAN_COUNT = 100;
const MAX_SCAN_COUNT = 1_000;
// SCAN calls per page at most; a page may then hold fewer keys than its limit, never more.
const MAX_SCANS_PER_PAGE = 32;

/** Where the store connects and how patient it is; {@link PersistRedisOptions} adds `ttlMs`. */
export interface RedisRecordStoreOptions {
  /**
   * Server URL: `redis[s]://[[user][:password]@]host[:port][/db]`, optionally with `?db=`,
   * `?password=`, `?username=`, `?family=`. Write `/ ? # @ %` in a user name or password
   * percent-encoded (`encodeURIComponent`); a URL that does not parse exactly is refused
   * (`InvalidOptionError`, the URL never shown). What the URL says wins over `redisOptions`.
   * Default: 127.0.0.1:6379, or the host and port of `redisOptions`.
   */
  url?: string;
  /** Start nodes of a Redis Cluster; when given, a cluster client is made instead of a single-server one. Default: none. */
  clusterNodes?: ClusterNode[];
  /**
   * An ioredis `Redis` or `Cluster` of the application; used as it is and never closed by this
   * backend. Its own retries stay as configured: with ioredis' defaults (offline queue, cluster
   * retries after CLUSTERDOWN) a command reported failed may still be sent later. Default: none.
   */
  client?: RedisClient;
  /** Further ioredis options for the client this backend makes (password, tls, db...); the failure settings below win. Default: `{}`. */
  redisOptions?: RedisOptions;
  /** Further ioredis `Cluster` options for the cluster client this backend makes; it never retries from a timer or queues commands, so `retryDelayOn*` and `enableOfflineQueue` do not apply. Default: `{}`. */
  clusterOptions?: ClusterOptions;
  /** Put before every key; must not contain `{` or `}`. Default: `"persist-kit:"`. */
  prefix?: string;
  /** Longest time, in ms, an operation takes (waiting for a connection included) before it rejects with `BackendUnavailableError`. Default: `5000`. */
  timeoutMs?: number;
  /** Longest pause, in ms, between reconnection attempts while the server is down. Default: `2000`. */
  maxReconnectDelayMs?: number;
  /** Replicas that must hold each write or delete before it resolves (`WAIT`). Default: `0`. */
  waitForReplicas?: number;
  /** Resolve a write or delete only once it is fsynced to the append-only file (`WAITAOF`, Redis >= 7.2; older servers only with `appendfsync always`). Default: `false`. */
  waitForAof?: boolean;
  /** Longest time, in ms, to wait for replicas or the fsync, on top of `timeoutMs`. Default: `1000`. */
  waitTimeoutMs?: number;
  /**
   * Refuse every write and delete (`NotDurableError`, nothing written) while the server's settings
   * can lose an acknowledged change in a crash: no append-only file, or an fsync policy other than
   * `appendfsync always` without `waitForAof` on Redis >= 7.2. The policy is read again with each
   * change. Default: `false` (such settings are reported through `listenWarning` only).
   */
  requireDurable?: boolean;
}

/** One change of the batch writer: store `json` under `key`, or delete `key` when `json` is `null`. */
export interface BatchChange {
  readonly key: RecordKey;
  readonly json: string | null;
  /**
   * When a write expires (`performance.now()` ms): it is stored with the TTL left then, or, once
   * that is gone, sent as a delete (the row it replaced is gone too). `undefined`: no TTL.
   */
  readonly expiresAt?: number;
}

/** What became of each change of a batch, in order: `undefined` when it is stored, else its error. */
export type BatchResult = readonly (PersistError | undefined)[];

/**
 * Records in Redis or Redis Cluster, one string key per record (see `recordRedisKey`) holding a
 * v1 envelope `{"v":1,"revision":R,"value":<json>}`. Every write and delete is one server-side
 * script call that decides the condition and the revision, and raises the group's floor key (same
 * hash slot) in the same atomic step as a delete. A read is one GET (and, for an absent key, one
 * read-only script call reading the key and its floor). TTL is Redis' own expiry (`PX`, the
 * server's clock); an expired key falls back to its group's floor (`ttlResetsRevision`).
 *
 * @example
 * const records = new RedisRecordStore({ url: "redis://127.0.0.1:6379" });
 * const change = await records.write({ namespace: "risk", parts: ["momentum", "BTC/USDT"] }, "{}", { condition: { revision: 0 } });
 */
export class RedisRecordStore extends BaseRecordStore {
  readonly name = BACKEND;
  readonly capabilities: RecordStoreCapabilities = {
    // One script over every key; on a cluster only within one hash slot (refused otherwise).
    writeMany: "atomic",
    ttl: true,
    ttlResetsRevision: true,
    durable: true,
  };
  /** The prefix of every key this store reads and writes. */
  readonly prefix: string;
  readonly #connection: RedisConnection;
  readonly #waits: DurabilityWaits;
  // Read at every connection (and at the first change that needs them, before anything is sent),
  // shared by the changes until the next connection or a failed change.
  readonly #servers: RetryingOnce<RedisServerDurability[]>;
  // The durability risks reported by the last reading of the settings: each is reported once,
  // and again only if it went away and came back.
  #reportedRisks = new Set<string>();

  constructor(options: RedisRecordStoreOptions = {}) {
    super();
    this.prefix = assertPrefix(options.prefix ?? DEFAULT_PREFIX, BACKEND);
    // One way to reach the server: a URL with clusterNodes would leave one of them unused, unsaid.
    assertExclusiveOptions(BACKEND, { client: options.client, url: options.url, clusterNodes: options.clusterNodes });
    this.#waits = {
      replicas: wholeNumberOption(BACKEND, "waitForReplicas", options.waitForReplicas, { default: 0, min: 0 }),
      aof: options.waitForAof ?? false,
      timeoutMs: wholeNumberOption(BACKEND, "waitTimeoutMs", options.waitTimeoutMs, { default: 1_000, min: 1 }),
      requireDurable: options.requireDurable ?? false,
    };
    this.#servers = new RetryingOnce(() => this.#readSettings());
    this.#connection = new RedisConnection(
      {
        client: options.client,
        url: options.url,
        clusterNodes: options.clusterNodes,
        redisOptions: options.redisOptions ?? {},
        clusterOptions: options.clusterOptions ?? {},
        timeoutMs: wholeNumberOption(BACKEND, "timeoutMs", options.timeoutMs, { default: 5_000, min: 1 }),
        waitTimeoutMs: this.#waits.replicas > 0 || this.#waits.aof ? this.#waits.timeoutMs : 0,
        maxReconnectDelayMs: wholeNumberOption(BACKEND, "maxReconnectDelayMs", options.maxReconnectDelayMs, {
          default: 2_000,
          min: 1,
        }),
        // A new connection may reach a server that was restarted or reconfigured: read its
        // settings again, and say what can lose writes.
        onConnected: () => {
          this.#servers.reset();
          this.#servers.get().catch(() => {});
        },
      },
      { backend: BACKEND, operation: "create" },
    );
  }

  /**
   * What the server does to keep acknowledged writes (append-only file, fsync policy, snapshots,
   * replicas), for the server or every master of a cluster, judged with this store's waits.
   */
  describeDurability(): Promise<RedisDurabilityReport> {
    const context: PersistErrorContext = { backend: this.name, operation: "describe" };
    return this.lifecycle.run(context, () =>
      this.#connection
        .run(readDurability)
        .then((servers) => describeServers(servers, this.#waits))
        .catch(this.#wrapper(context)),
    );
  }

  /**
   * For `PersistRedisBatch`: sends unconditional writes and deletes as pipelined script calls (one
   * pipeline per hash slot on a cluster), so batched rows carry revisions like any other. Not
   * atomic: a failure may leave part of the changes applied. Resolves with what became of each
   * change; rejects only when nothing could be sent (closed, or refused by `requireDurable`).
   */
  sendBatch(changes: readonly BatchChange[]): Promise<BatchResult> {
    const context: PersistErrorContext = { backend: this.name, operation: "writeMany" };
    const groups = this.#connection.isCluster ? groupByHashTag(changes) : [changes];
    const results = new Map<BatchChange, PersistError | undefined>();
    return this.lifecycle.run(context, async () => {
      if (this.#waits.requireDurable) {
        const servers = await this.#connection.run(() => this.#servers.get()).catch(this.#wrapper(context));
        planChange(servers, { ...this.#waits, aof: false, replicas: 0 }, context);
      }
      await Promise.all(
        groups.map((group) =>
          this.#connection
            .run((client) => this.#sendPipeline(client, group))
            .then(
              (errors) => {
                for (const [index, change] of group.entries()) results.set(change, errors[index]);
              },
              (error: unknown) => {
                const wrapped = this.wrapError(error, context);
                for (const change of group) results.set(change, wrapped);
              },
            ),
        ),
      );
      return changes.map((change) => results.get(change));
    });
  }

  protected async readRecord(key: RecordKey, context: PersistErrorContext): Promise<RecordRead> {
    const redisKey = recordRedisKey(this.prefix, key);
    const stored = await this.#connection
      .run((client) => client.getBuffer(redisKey))
      .catch(wrongTypeAsCorrupt(`redis key ${redisKey}`, context));
    if (stored !== null) return foundRecord(stored, redisKey, context);
    // The key and its floor in one atomic read (a script, as MGET reads a floor of another type
    // as no floor): a floor raised after the key was written (another key's delete) is never
    // reported for it.
    const floorKey = floorRedisKey(this.prefix, key);
    const [code, again] = await this.#connection
      .run((client) => readAbsentRecord(client, redisKey, floorKey))
      .catch(wrongTypeAsCorrupt(`redis key ${redisKey}`, context));
    if (code === 1 && again !== undefined) return foundRecord(again, redisKey, context);
    if (code === CORRUPT_FLOOR) throw floorOfAnotherType(floorKey, context);
    return { found: false, revision: floorOf(again ?? null, floorKey, context) };
  }

  protected async writeRecord(
    key: RecordKey,
    json: string,
    options: { condition: RecordCondition | undefined; ttlMs: number | undefined },
    context: PersistErrorContext,
  ): Promise<RecordChange> {
    const keys = this.#scriptKeys(key);
    const args = [json, ...conditionArguments(options.condition), ttlArgument(options.ttlMs)];
    return changeOf(await this.#change(context, WRITE_RECORD, keys, args), keys, context);
  }

  protected async deleteRecord(
    key: RecordKey,
    condition: RecordCondition | undefined,
    context: PersistErrorContext,
  ): Promise<RecordChange> {
    const keys = this.#scriptKeys(key);
    return changeOf(await this.#change(context, DELETE_RECORD, keys, conditionArguments(condition)), keys, context);
  }

  protected override async writeManyRecords(
    entries: readonly RecordEntry[],
    ttlMs: number | undefined,
    context: PersistErrorContext,
  ): Promise<void> {
    if (this.#connection.isCluster) assertOneHashSlot(entries, context);
    const keys = entries.flatMap(({ key }) => this.#scriptKeys(key));
    const args = [ttlArgument(ttlMs), ...entries.map(({ json }) => json)];
    const [code, position] = await this.#change(context, WRITE_MANY_RECORDS, keys, args);
    const index = position - 1;
    const entry = entries[index];
    if (code === 1 || entry === undefined) return;
    changeOf([code, 0], keys.slice(2 * index, 2 * index + 2), recordContext(this.name, "writeMany", entry.key));
  }

  protected async listRecords(
    namespace: string,
    request: ListRequest,
    context: PersistErrorContext,
  ): Promise<RecordPage> {
    return this.#connection.run((client) => {
      const servers = dataServers(client);
      const position = decodeListCursor(request.cursor, servers.length, context);
      return this.#listPage(servers, namespace, request, position, context);
    });
  }

  protected async pingStore(_context: PersistErrorContext): Promise<void> {
    await this.#connection.run(async (client) => {
      await Promise.all(dataServers(client).map((server) => server.ping()));
    });
  }

  protected closeStore(): Promise<void> {
    return this.#connection.close();
  }

  // ioredis puts the arguments of a failed command on its error (AUTH: the password); they are
  // removed whatever the password, and every password the client was given is redacted by core.
  protected wrapError(error: unknown, context: PersistErrorContext): PersistError {
    redactCommandArguments(error);
    const withSecrets: PersistErrorContext = { ...context, secrets: this.#connection.secrets };
    const refusal = credentialRefusal(error);
    if (refusal !== undefined) {
      return new InvalidOptionError(
        `the server refused the credentials (${refusal.message}): check the user name and password ` +
          "(in the URL or redisOptions); the backend does not reconnect on its own until the next operation",
        { ...withSecrets, outcome: "not-applied", cause: error },
      );
    }
    return wrapDriverError(error, withSecrets, REDIS_ERROR_RULES);
  }

  // Changes need the server's settings first: to wait for replicas or the fsync, or to refuse.
  #changesNeedSettings(): boolean {
    return this.#waits.replicas > 0 || this.#waits.aof || this.#waits.requireDurable;
  }

  // Reads the settings of the server (every master), and reports each durability risk not
  // reported by the last reading.
  async #readSettings(): Promise<RedisServerDurability[]> {
    const servers = await readDurability(this.#connection.client);
    const risks = servers.flatMap((server) =>
      durabilityRisks(server, this.#waits).map((message) => ({ server, message })),
    );
    for (const { server, message } of risks) {
      if (this.#reportedRisks.has(message)) continue;
      reportWarning({
        backend: BACKEND,
        kind: "durability",
        message,
        details: {
          address: server.address,
          version: server.version,
          appendOnly: server.appendOnly,
          appendFsync: server.appendFsync,
          snapshotRules: server.snapshotRules,
        },
      });
    }
    this.#reportedRisks = new Set(risks.map(({ message }) => message));
    return servers;
  }

  #scriptKeys(key: RecordKey): [string, string] {
    return [recordRedisKey(this.prefix, key), floorRedisKey(this.prefix, key)];
  }

  #wrapper(context: PersistErrorContext): (error: unknown) => never {
    return (error) => {
      throw this.wrapError(error, context);
    };
  }

  // One script call; with waits, the WAIT/WAITAOF right after it on the same connection.
  async #change(
    context: PersistErrorContext,
    script: RecordScript,
    keys: readonly string[],
    args: readonly string[],
  ): Promise<ScriptReply> {
    const corrupt = wrongTypeAsCorrupt(`redis key ${keys[0]} or ${keys[1]}`, context);
    if (!this.#changesNeedSettings()) {
      return this.#connection.run((client) => runScript(client, script, keys, args)).catch(corrupt);
    }
    try {
      return await this.#connection
        .run((client, deadline) => this.#changeAndWait(client, deadline, context, script, keys, args), { waits: true })
        .catch(corrupt);
    } catch (error) {
      // The server may come back changed (restarted, reconfigured, upgraded): ask again.
      this.#servers.reset();
      throw error;
    }
  }

  async #changeAndWait(
    client: RedisClient,
    deadline: number,
    context: PersistErrorContext,
    script: RecordScript,
    keys: readonly string[],
    args: readonly string[],
  ): Promise<ScriptReply> {
    const plan = planChange(await this.#servers.get(), this.#waits, context);
    if (plan.wait === undefined && !plan.verifyFsync) {
      return issueBefore(client, deadline, () => runScript(client, script, keys, args));
    }
    return issueBefore(client, deadline, () => sendChange(client, plan, script, keys, args, context));
  }

  // One pipeline of script calls; resolves with each change's error (undefined: stored).
  async #sendPipeline(client: RedisClient, changes: readonly BatchChange[]): Promise<BatchResult> {
    const pipeline = scriptPipeline(client);
    const now = performance.now();
    for (const { key, json, expiresAt } of changes) {
      const keys = this.#scriptKeys(key);
      // A write whose TTL ran out while it was queued: the key is gone, with the row it replaced.
      const ttlMs = expiresAt === undefined ? undefined : Math.floor(expiresAt - now);
      if (json === null || (ttlMs !== undefined && ttlMs < 1)) {
        queueScript(pipeline, DELETE_RECORD, keys, conditionArguments(undefined));
      } else {
        queueScript(pipeline, WRITE_RECORD, keys, [json, ...conditionArguments(undefined), ttlArgument(ttlMs)]);
      }
    }
    const replies = (await pipeline.exec()) ?? [];
    return changes.map((change, index) => {
      const [error, reply] = replies[index] ?? [new Error("no reply"), undefined];
      const context = recordContext(this.name, change.json === null ? "delete" : "write", change.key);
      try {
        if (error) wrongTypeAsCorrupt(`redis key ${recordRedisKey(this.prefix, change.key)}`, context)(error);
        changeOf(reply as ScriptReply, this.#scriptKeys(change.key), context);
        return undefined;
      } catch (failure) {
        return this.wrapError(failure, context);
      }
    });
  }

  // One page: keys already scanned but not yet returned first (they travel in the cursor), then
  // further SCAN calls, node after node, until the page is full or the scan budget is spent.
  async #listPage(
    servers: readonly Redis[],
    namespace: string,
    request: ListRequest,
    start: ListPosition,
    context: PersistErrorContext,
  ): Promise<RecordPage> {
    const pattern = recordKeyPattern(this.prefix, namespace, request.prefix);
    const count = Math.min(Math.max(request.limit, MIN_SCAN_COUNT), MAX_SCAN_COUNT);
    const records: ListedRecord[] = [];
    const returned = new Set<string>();
    const listed = (redisKey: string) =>
      startsWith(parseRecordRedisKey(this.prefix, namespace, redisKey), request.prefix);
    let position = start;
    let scans = 0;
    while (records.length < request.limit) {
      const server = servers[position.node];
      if (server === undefined) break;
      if (position.pending.length > 0) {
        const batch = position.pending.slice(0, request.limit - records.length);
        position = { ...position, pending: position.pending.slice(batch.length) };
        // SCAN may return a key twice: within a page it is listed once. A cursor comes from the
        // caller, so its keys are checked again.
        const fresh = [...new Set(batch)].filter((redisKey) => !returned.has(redisKey) && listed(redisKey));
        for (const record of await liveRecords(server, fresh, this.prefix, namespace, context)) {
          returned.add(record.redisKey);
          records.push({ parts: record.parts, revision: record.revision });
        }
      } else if (position.done) {
        position = { node: position.node + 1, scan: "0", done: false, pending: [] };
      } else if (scans < MAX_SCANS_PER_PAGE) {
        scans++;
        const [next, found] = await server.scan(position.scan, "MATCH", pattern, "COUNT", count);
        position = { node: position.node, scan: next, done: next === "0", pending: found.filter(listed) };
      } else {
        break;
      }
    }
    const finished = position.pending.length === 0 && position.done && position.node >= servers.length - 1;
    return { records, cursor: finished || position.node >= servers.length ? undefined : encodeListCursor(position) };
  }
}

/**
 * Sends one change with what its plan adds, in one round trip on one connection: the script, in
 * a transaction with `CONFIG GET append*` when the fsync policy is verified, then `WAIT` or
 * `WAITAOF`. The script goes as its text, not its SHA: after NOSCRIPT ioredis resends a script
 * outside the pipeline, after the wait, which would then not cover the change.
 */
async function sendChange(
  client: RedisClient,
  plan: ChangePlan,
  script: RecordScript,
  keys: readonly string[],
  args: readonly string[],
  context: PersistErrorContext,
): Promise<ScriptReply> {
  const pipeline = client.pipeline();
  if (plan.verifyFsync) pipeline.call("MULTI").call("CONFIG", "GET", "append*");
  pipeline.eval(script.lua, keys.length, ...keys, ...args);
  if (plan.verifyFsync) pipeline.call("EXEC");
  if (plan.wait !== undefined) pipeline.call(plan.wait.name, ...plan.wait.args);
  const replies = (await pipeline.exec()) ?? [];
  for (const [error] of replies) if (error) throw error;
  if (!plan.verifyFsync) {
    if (plan.wait !== undefined) checkWaitReply(replies[1]?.[1], plan.wait, context);
    return replies[0]?.[1] as ScriptReply;
  }
  // MULTI, CONFIG GET and the script answer QUEUED; EXEC answers both (an error in its place).
  const transaction = replies[3]?.[1];
  if (!Array.isArray(transaction)) throw new Error("the transaction of the change gave no reply");
  const [settings, change] = transaction as unknown[];
  if (change instanceof Error) throw change;
  if (settings instanceof Error) throw settings;
  const reply = change as ScriptReply;
  // Not applied (a condition, a corrupt key): nothing to be fsynced.
  if (reply[0] === 1) checkFsyncReply(settings, context);
  if (plan.wait !== undefined) checkWaitReply(replies[4]?.[1], plan.wait, context);
  return reply;
}

async function readDurability(client: RedisClient | undefined): Promise<RedisServerDurability[]> {
  if (client === undefined) throw new Error("not connected");
  return Promise.all(dataServers(client).map(readServerDurability));
}

// The records still stored among `redisKeys` of one node, with their revisions (one pipeline).
async function liveRecords(
  server: Redis,
  redisKeys: readonly string[],
  prefix: string,
  namespace: string,
  context: PersistErrorContext,
): Promise<{ redisKey: string; parts: string[]; revision: number }[]> {
  if (redisKeys.length === 0) return [];
  const pipeline = server.pipeline();
  for (const redisKey of redisKeys) pipeline.get(redisKey);
  const replies = (await pipeline.exec()) ?? [];
  const live: { redisKey: string; parts: string[]; revision: number }[] = [];
  for (const [index, [error, text]] of replies.entries()) {
    const redisKey = redisKeys[index] as string;
    if (error) throw wrongTypeAsCorrupt(`redis key ${redisKey}`, context)(error);
    // Deleted or expired since the SCAN.
    if (text === null) continue;
    const stored = parseStoredRecord(text as string);
    if (stored === undefined) throw notARecord(redisKey, context);
    const parts = parseRecordRedisKey(prefix, namespace, redisKey) as string[];
    live.push({ redisKey, parts, revision: stored.revision });
  }
  return live;
}

function foundRecord(stored: Buffer, redisKey: string, context: PersistErrorContext): RecordRead {
  const record = parseStoredRecord(decodeStoredText(stored, context, `redis key ${redisKey}`));
  if (record === undefined) throw notARecord(redisKey, context);
  return { found: true, json: record.json, revision: record.revision };
}

function floorOf(stored: Buffer | null, floorKey: string, context: PersistErrorContext): number {
  const floor = parseFloor(stored === null ? null : stored.toString("latin1"));
  if (floor === undefined) throw notAFloor(floorKey, context);
  return floor;
}

function changeOf(
  reply: ScriptReply,
  [recordKey, floorKey]: readonly string[],
  context: PersistErrorContext,
): RecordChange {
  const [code, revision] = reply;
  if (code === CORRUPT_RECORD) throw notARecord(recordKey as string, context);
  if (code === CORRUPT_FLOOR) throw notAFloor(floorKey as string, context);
  if (code === RECORD_AT_MAX_REVISION) throw atMaxRevision(`redis key ${recordKey}`, context);
  if (code === FLOOR_AT_MAX_REVISION) throw atMaxRevision(`the revision floor key ${floorKey}`, context);
  return { applied: code === 1, revision };
}

function atMaxRevision(where: string, context: PersistErrorContext): CorruptDataError {
  return new CorruptDataError(
    `${where} holds revision ${MAX_STORED_REVISION}, the highest a stored revision can be (conditions stop at ` +
      `2^52): a change would store one that is not exact; nothing was written`,
    context,
  );
}

function floorOfAnotherType(floorKey: string, context: PersistErrorContext): CorruptDataError {
  return new CorruptDataError(
    `the revision floor key ${floorKey} holds another type than a string; it was left in place`,
    context,
  );
}

function notARecord(redisKey: string, context: PersistErrorContext): CorruptDataError {
  return new CorruptDataError(
    `redis key ${redisKey} does not hold a v1 record ({"v":1,"revision":R,"value":...}); it was left in place`,
    context,
  );
}

function notAFloor(floorKey: string, context: PersistErrorContext): CorruptDataError {
  return new CorruptDataError(
    `the revision floor key ${floorKey} does not hold a whole number; it was left in place`,
    context,
  );
}

// A key of another type than a string (a hash, say) is stored data this backend cannot read.
function wrongTypeAsCorrupt(where: string, context: PersistErrorContext): (error: unknown) => never {
  return (error) => {
    if (replyCode(error) !== "WRONGTYPE") throw error;
    throw new CorruptDataError(`${where} holds another type than a string; it was left in place`, {
      ...context,
      cause: error,
    });
  };
}

function assertOneHashSlot(entries: readonly RecordEntry[], context: PersistErrorContext): void {
  const tags = new Set(entries.map(({ key }) => key.parts[0]));
  if (tags.size <= 1) return;
  const names = [...tags].map((name) => JSON.stringify(name)).join(", ");
  throw new InvalidOptionError(
    `on Redis Cluster writeMany is atomic within one hash slot only: every entry needs the same first key part ` +
      `(the strategy of a signal), got ${tags.size}: ${names}; nothing was written`,
    context,
  );
}

function groupByHashTag(changes: readonly BatchChange[]): BatchChange[][] {
  const groups = new Map<string | undefined, BatchChange[]>();
  for (const change of changes) {
    const tag = change.key.parts[0];
    const group = groups.get(tag);
    if (group === undefined) groups.set(tag, [change]);
    else group.push(change);
  }
  return [...groups.values()];
}

function startsWith(parts: readonly string[] | undefined, prefix: readonly string[]): boolean {
  return parts !== undefined && prefix.every((part, index) => parts[index] === part);
}
