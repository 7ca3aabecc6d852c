import { errorMessage } from "@persist-kit/core";
import type { Cluster, ClusterNode, ClusterOptions, RedisOptions } from "ioredis";
import { Redis } from "ioredis";
import { UnansweredError } from "./errors.js";
import { COMMAND_TIMED_OUT, FailFastCluster, issueBefore } from "./fail-fast-cluster.js";

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
 * One operation: it sends its commands through `client`; `deadline` (`performance.now()` ms) is
 * when the connection gives up on it. A command sent after an `await` inside the operation goes
 * through {@link issueBefore} with that deadline, so a cluster client gives up on it then too.
 */
export type RedisOperation<T> = (client: RedisClient, deadline: number) => Promise<T>;

/**
 * One ioredis client and the rules every operation goes through: wait for the connection (made
 * on first use), then run, all within a deadline. Driver errors are thrown as they are (the
 * record store wraps them); a missed deadline, or a connection that ended before anything was
 * sent, is an {@link UnansweredError} saying whether the operation had sent anything. Open/closed
 * state and waiting for running operations are the record store's lifecycle, not this class's.
 *
 * A client this class makes never sends a command after the caller was answered: no offline
 * queue, no resending after a reconnect, no retries from a timer (see {@link FailFastCluster}).
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
   * Runs `operation` once the client is connected. Rejects with {@link UnansweredError} when the
   * connection and the operation together take longer than the timeout (plus the replica wait
   * when `waits` is set); the operation never starts after its deadline.
   */
  run<T>(operation: RedisOperation<T>, options: { waits?: boolean } = {}): Promise<T> {
    const client = this.#client;
    const timeoutMs = this.#settings.timeoutMs + (options.waits ? this.#settings.waitTimeoutMs : 0);
    const deadline = performance.now() + timeoutMs;
    // A connected client this backend made bounds every command with ioredis' commandTimeout
    // (timeoutMs, when writes do not wait): the common case needs no deadline (timer, abort
    // signal) of its own. Operations that wait may send several commands, so they keep one.
    const bounded = this.#owned && client !== undefined && isConnected(client) && this.#settings.waitTimeoutMs === 0;
    let started: Promise<T>;
    try {
      started = bounded
        ? issueBefore(client, deadline, () => operation(client, deadline))
        : this.#runWithin(timeoutMs, deadline, operation);
    } catch (error) {
      return Promise.reject(error);
    }
    return started.catch((error: unknown) => {
      throw isCommandTimeout(error) ? this.#timeoutError(timeoutMs, true) : error;
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

  async #runWithin<T>(timeoutMs: number, deadline: number, operation: RedisOperation<T>): Promise<T> {
    const abort = new AbortController();
    let started = false;
    const timer = setTimeout(() => abort.abort(this.#timeoutError(timeoutMs, started)), timeoutMs);
    try {
      let client: RedisClient;
      try {
        client = await this.#connected(abort.signal);
        abort.signal.throwIfAborted();
      } catch (error) {
        throw error instanceof UnansweredError ? error : new UnansweredError(errorMessage(error), false, error);
      }
      started = true;
      return await untilAborted(
        issueBefore(client, deadline, () => operation(client, deadline)),
        abort.signal,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  // `sent`: whether the operation had started (on a connected client), so its commands may have
  // reached the server.
  #timeoutError(timeoutMs: number, sent: boolean): UnansweredError {
    if (sent) return new UnansweredError(`the server did not answer within ${timeoutMs} ms`, true);
    const client = this.#client;
    const status =
      client instanceof FailFastCluster && client.status === "ready" ? "connecting to a master" : client?.status;
    const reason = `${status ?? "no client"}${this.#lastError ? `: ${this.#lastError.message}` : ""}`;
    return new UnansweredError(`not connected (${reason}) within ${timeoutMs} ms`, false, this.#lastError);
  }

  // Resolves with a ready client; connects on first use, and waits while ioredis reconnects.
  async #connected(deadline: AbortSignal): Promise<RedisClient> {
    const client = this.#clientOnce();
    if (isConnected(client)) return client;
    if (client.status === "end" && !this.#owned) throw new Error("the ioredis client given to PersistRedis was closed");
    if (client.status !== "ready") await untilAborted(this.#readyOnce(client), deadline);
    if (client instanceof FailFastCluster) await untilAborted(client.mastersConnected(), deadline);
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
    // server now or fails, so a write the caller saw fail is never carried out later. (ioredis
    // turns the offline queue back on for each cluster node; FailFastCluster handles that.)
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
        : new FailFastCluster(clusterNodes, {
            ...clusterOptions,
            lazyConnect: true,
            enableOfflineQueue: false,
            // A MOVED reply is followed at once, within the command's deadline, never from a timer.
            retryDelayOnMoved: 0,
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

// Ready to send: on a cluster this backend made, the connection to every master too.
function isConnected(client: RedisClient): boolean {
  return client instanceof FailFastCluster ? client.connected : client.status === "ready";
}

function isCommandTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === COMMAND_TIMED_OUT;
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
