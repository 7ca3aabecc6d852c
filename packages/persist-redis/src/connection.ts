import { BackendUnavailableError, type PersistErrorContext } from "@persist-kit/core";
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from "ioredis";

/** A single-server or cluster ioredis client. */
export type RedisClient = Redis | Cluster;

// The first reconnection attempt comes quickly (a restart is often over in a moment); later
// ones back off, up to the configured cap.
const FIRST_RECONNECT_DELAY_MS = 50;

/** Where the connection comes from and how patient it is. */
export interface ConnectionSettings {
  /** An application's client, used as it is and never closed. */
  client?: RedisClient;
  url: string;
  clusterNodes?: ClusterNode[];
  redisOptions: RedisOptions;
  clusterOptions: ClusterOptions;
  timeoutMs: number;
  /** Added to the timeout of operations that wait for replicas or an fsync; 0 when writes do not wait. */
  waitTimeoutMs: number;
  maxReconnectDelayMs: number;
}

/**
 * One ioredis client and the rules every operation goes through: wait for the connection (made
 * on first use), then run, all within a deadline. Driver errors are thrown as they are (the
 * record store wraps them); a missed deadline is a {@link BackendUnavailableError}. Open/closed
 * state and waiting for running operations are the record store's lifecycle, not this class's.
 */
export class RedisConnection {
  /** True when the client is a Redis Cluster client. Known before any I/O. */
  readonly isCluster: boolean;
  readonly #settings: ConnectionSettings;
  readonly #owned: boolean;
  #client: RedisClient | undefined;
  #lastError: Error | undefined;
  #ready: { promise: Promise<void>; cancel(): void } | undefined;

  constructor(settings: ConnectionSettings) {
    this.#settings = settings;
    this.#owned = settings.client === undefined;
    this.#client = settings.client;
    this.isCluster = settings.client === undefined ? settings.clusterNodes !== undefined : settings.client.isCluster;
  }

  /** The client, once the first operation made it (or the one passed in). */
  get client(): RedisClient | undefined {
    return this.#client;
  }

  /**
   * Runs `operation` once the client is connected. Rejects with {@link BackendUnavailableError}
   * when the connection and the operation together take longer than the timeout (plus the
   * replica wait when `waits` is set); the operation never starts after its deadline.
   */
  run<T>(
    context: PersistErrorContext,
    operation: (client: RedisClient) => Promise<T>,
    options: { waits?: boolean } = {},
  ): Promise<T> {
    const client = this.#client;
    const timeoutMs = this.#settings.timeoutMs + (options.waits ? this.#settings.waitTimeoutMs : 0);
    // A connected client this backend made bounds every command with ioredis' commandTimeout
    // (timeoutMs, when writes do not wait): the common case needs no deadline (timer, abort
    // signal) of its own. Operations that wait may send several commands, so they keep one.
    const bounded = this.#owned && client?.status === "ready" && this.#settings.waitTimeoutMs === 0;
    let started: Promise<T>;
    try {
      started = bounded ? operation(client) : this.#runWithin(timeoutMs, context, operation);
    } catch (error) {
      return Promise.reject(error);
    }
    return started.catch((error: unknown) => {
      throw isCommandTimeout(error) ? this.#timeoutError(timeoutMs, context) : error;
    });
  }

  /**
   * Closes the client if this connection made it; a client passed in by the application is left
   * open. Called once, by the record store, after its running operations settled.
   */
  async close(): Promise<void> {
    this.#ready?.cancel();
    const client = this.#client;
    if (!this.#owned || client === undefined) return;
    if (client.status === "ready") {
      await client.quit().catch(() => {});
    }
    if (client.status !== "end") client.disconnect();
  }

  async #runWithin<T>(
    timeoutMs: number,
    context: PersistErrorContext,
    operation: (client: RedisClient) => Promise<T>,
  ): Promise<T> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(this.#timeoutError(timeoutMs, context)), timeoutMs);
    try {
      const client = await this.#connected(deadline.signal);
      deadline.signal.throwIfAborted();
      return await untilAborted(operation(client), deadline.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  #timeoutError(timeoutMs: number, context: PersistErrorContext): BackendUnavailableError {
    const client = this.#client;
    const connected = client?.status === "ready";
    const reason = connected
      ? "the server did not answer"
      : `not connected (${client?.status ?? "no client"}${this.#lastError ? `: ${this.#lastError.message}` : ""})`;
    return new BackendUnavailableError(`${reason} within ${timeoutMs} ms`, {
      ...context,
      cause: connected ? undefined : this.#lastError,
    });
  }

  // Resolves with a ready client; connects on first use, and waits while ioredis reconnects.
  async #connected(deadline: AbortSignal): Promise<RedisClient> {
    const client = this.#clientOnce();
    if (client.status === "ready") return client;
    if (client.status === "end" && !this.#owned) throw new Error("the ioredis client given to PersistRedis was closed");
    await untilAborted(this.#readyOnce(client), deadline);
    return client;
  }

  // One wait for "ready" shared by every waiting operation, so a burst of operations during an
  // outage adds three listeners to the client, not three per operation.
  #readyOnce(client: RedisClient): Promise<void> {
    if (this.#ready !== undefined) return this.#ready.promise;
    let settle: (error?: Error) => void = () => {};
    const promise = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    const onReady = () => finish();
    const onError = (error: Error) => {
      this.#lastError = error;
    };
    const onEnd = () => finish(new Error(`connection ended: ${this.#lastError?.message ?? "closed"}`));
    const finish = (error?: Error) => {
      client.off("ready", onReady).off("error", onError).off("end", onEnd);
      this.#ready = undefined;
      if (error === undefined) this.#lastError = undefined;
      settle(error);
    };
    promise.catch(() => {});
    this.#ready = { promise, cancel: () => finish(new Error("the backend is closed")) };
    client.on("ready", onReady).on("error", onError).on("end", onEnd);
    if (client.status === "wait" || client.status === "end") client.connect().catch(() => {});
    return promise;
  }

  #clientOnce(): RedisClient {
    this.#client ??= this.#createClient();
    return this.#client;
  }

  #createClient(): RedisClient {
    const { url, clusterNodes, redisOptions, clusterOptions, timeoutMs, waitTimeoutMs, maxReconnectDelayMs } =
      this.#settings;
    const retryDelay = (attempt: number) =>
      Math.min(FIRST_RECONNECT_DELAY_MS * 2 ** (attempt - 1), maxReconnectDelayMs);
    // No offline queue and no resending after a reconnect: a command either reaches a connected
    // server now or fails, so a write the caller saw fail is never carried out later.
    const failFast: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs + waitTimeoutMs,
    };
    const client =
      clusterNodes === undefined
        ? new Redis(url, { ...redisOptions, ...failFast, retryStrategy: retryDelay })
        : new Cluster(clusterNodes, {
            ...clusterOptions,
            lazyConnect: true,
            enableOfflineQueue: false,
            clusterRetryStrategy: retryDelay,
            redisOptions: { ...clusterOptions.redisOptions, ...redisOptions, ...failFast, lazyConnect: true },
          });
    // Without a listener ioredis prints every connection error; the last one goes into messages.
    client.on("error", (error: Error) => {
      this.#lastError = error;
    });
    return client;
  }
}

// ioredis rejects a command that outlived commandTimeout with exactly this message.
function isCommandTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === "Command timed out";
}

/** `promise`, or the abort reason of `signal` if it aborts first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
