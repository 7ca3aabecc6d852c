import { connectionSecrets, errorMessage, type PersistErrorContext } from "@persist-kit/core";
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from "ioredis";
import { issueBefore } from "./command-deadline.js";
import { credentialRefusal, isCommandTimeout, redactCommandArguments, UnansweredError } from "./errors.js";
import { FailFastCluster } from "./fail-fast-cluster.js";
import { FailFastRedis } from "./fail-fast-redis.js";
import { redisUrlSettings } from "./redis-url.js";

/** A single-server or cluster ioredis client. */
export type RedisClient = Redis | Cluster;

// The first reconnection attempt comes quickly (a restart is often over in a moment); later
// ones back off, up to the configured cap.
const FIRST_RECONNECT_DELAY_MS = 50;
// Connection errors that say no server is there at all (not one that speaks another protocol).
// OpenSSL's verification codes as Node reports them (SELF_SIGNED_CERT_IN_CHAIN,
// UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED...) and Node's host name check.
const CERTIFICATE_REFUSED = /CERT|SIGNATURE|ISSUER/;
const NOTHING_LISTENS = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/** Where the connection comes from and how patient it is. */
export interface ConnectionSettings {
  /** An application's client, used as it is and never closed. */
  client?: RedisClient;
  /** The server's URL; `undefined`: 127.0.0.1:6379, unless `redisOptions` say otherwise. */
  url: string | undefined;
  clusterNodes?: ClusterNode[];
  redisOptions: RedisOptions;
  clusterOptions: ClusterOptions;
  timeoutMs: number;
  /** Added to the timeout of operations that wait for replicas or an fsync; 0 when writes do not wait. */
  waitTimeoutMs: number;
  maxReconnectDelayMs: number;
  /**
   * Called when an operation is about to use a client that connected since the last call (the
   * first connection, and every reconnection), before the operation's commands are sent.
   */
  onConnected?: (client: RedisClient) => void;
}

/**
 * One operation: it sends its commands through `client`; `deadline` (`performance.now()` ms) is
 * when the connection gives up on it. A command sent after an `await` inside the operation goes
 * through {@link issueBefore} with that deadline, so the client gives up on it then too.
 */
export type RedisOperation<T> = (client: RedisClient, deadline: number) => Promise<T>;

/**
 * One ioredis client and the rules every operation goes through: wait for the connection (made
 * on first use), then run, all within a deadline. Driver errors are thrown as they are (the
 * record store wraps them), with passwords removed from the commands ioredis puts on them; a
 * missed deadline, or a connection that ended before anything was sent, is an
 * {@link UnansweredError} saying whether the operation had sent anything. A server that refuses
 * the credentials (`WRONGPASS`, `NOAUTH`) fails the waiting operations at once with its reply,
 * and a client this class made stops reconnecting until the next operation tries once more.
 * Open/closed state and waiting for running operations are the record store's lifecycle, not
 * this class's.
 *
 * A client this class makes never sends a command after the caller was answered: no offline
 * queue, no resending after a reconnect, no retries from a timer (see {@link FailFastCluster}).
 */
export class RedisConnection {
  /** True when the client is a Redis Cluster client. Known before any I/O. */
  readonly isCluster: boolean;
  /** The passwords the client is given (URL, `redisOptions`, the client passed in): never to be shown. */
  readonly secrets: readonly string[];
  readonly #settings: ConnectionSettings;
  readonly #owned: boolean;
  // The options of the single-server client to make, read from the URL at construction.
  readonly #serverOptions: RedisOptions | undefined;
  #client: RedisClient | undefined;
  #lastError: Error | undefined;
  // The server refused the credentials: no reconnection until an operation asks for one.
  #refused: Error | undefined;
  #ready: { promise: Promise<void>; cancel(): void } | undefined;
  // Connections made (ready events) and the count `onConnected` was last called at.
  #connections = 0;
  #announced = -1;
  #stopListening: (() => void) | undefined;

  constructor(settings: ConnectionSettings, context: PersistErrorContext) {
    this.#settings = settings;
    this.#owned = settings.client === undefined;
    this.#client = settings.client;
    this.isCluster = settings.client === undefined ? settings.clusterNodes !== undefined : settings.client.isCluster;
    this.#serverOptions =
      this.#owned && settings.clusterNodes === undefined ? serverOptions(settings, context) : undefined;
    this.secrets = passwordsOf(settings, this.#serverOptions);
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
    // A connected client this backend made times out every command issued within the
    // operation's deadline by itself: the common case (one command) needs no timer or abort
    // signal of its own. Operations that wait may send several commands, so they keep one.
    const bounded = this.#owned && client !== undefined && isConnected(client) && !options.waits;
    let started: Promise<T>;
    try {
      started = bounded ? this.#issue(client, deadline, operation) : this.#runWithin(timeoutMs, deadline, operation);
    } catch (error) {
      return Promise.reject(redactCommandArguments(error));
    }
    return started.catch((error: unknown) => {
      throw isCommandTimeout(error) ? this.#timeoutError(timeoutMs, true, error) : redactCommandArguments(error);
    });
  }

  /**
   * Closes the client if this connection made it; a client passed in by the application is left
   * open. Called once, by the record store, after its running operations settled.
   */
  async close(): Promise<void> {
    this.#ready?.cancel();
    this.#stopListening?.();
    const client = this.#client;
    if (!this.#owned || client === undefined) return;
    if (client.status === "ready") {
      await client.quit().catch(() => {});
    }
    if (client.status !== "end") client.disconnect();
  }

  // Tells `onConnected` about a connection made since the last operation, then sends.
  #issue<T>(client: RedisClient, deadline: number, operation: RedisOperation<T>): Promise<T> {
    if (this.#announced !== this.#connections) {
      this.#announced = this.#connections;
      this.#settings.onConnected?.(client);
    }
    return issueBefore(client, deadline, () => operation(client, deadline));
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
        if (error instanceof UnansweredError || credentialRefusal(error) !== undefined) throw error;
        throw new UnansweredError(errorMessage(error), false, error);
      }
      started = true;
      return await untilAborted(this.#issue(client, deadline, operation), abort.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  // `sent`: whether the operation had started (on a connected client), so its commands may have
  // reached the server.
  #timeoutError(timeoutMs: number, sent: boolean, cause?: unknown): UnansweredError {
    if (sent) return new UnansweredError(`the server did not answer within ${timeoutMs} ms`, true, cause);
    const client = this.#client;
    const status =
      client instanceof FailFastCluster && client.status === "ready" ? "connecting to a master" : client?.status;
    const lastError = this.#lastError;
    const reason = `${status ?? "no client"}${lastError ? `: ${lastError.message}` : ""}`;
    // A TLS client on a plain port waits for a handshake that never comes. A server that sent a
    // certificate the client refused speaks TLS: the certificate is the problem, as the reason says.
    const code = String(errorCode(lastError));
    const hint =
      client !== undefined && usesTls(client) && !NOTHING_LISTENS.has(code) && !CERTIFICATE_REFUSED.test(code)
        ? " — the server may not speak TLS; use redis:// (no tls option) for a plain port"
        : "";
    return new UnansweredError(`not connected (${reason}) within ${timeoutMs} ms${hint}`, false, lastError);
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
      this.#lastError = redactCommandArguments(error);
      // Wrong credentials: reconnecting cannot help, so the waiting operations fail now.
      if (credentialRefusal(error) !== undefined) finish(error);
    };
    const onEnd = () => finish(this.#refused ?? new Error(`connection ended: ${this.#lastError?.message ?? "closed"}`));
    const finish = (error?: Error) => {
      client.off("ready", onReady).off("error", onError).off("end", onEnd);
      this.#ready = undefined;
      if (error === undefined) this.#lastError = undefined;
      settle(error);
    };
    promise.catch(() => {});
    this.#ready = { promise, cancel: () => finish(new Error("the backend is closed")) };
    client.on("ready", onReady).on("error", onError).on("end", onEnd);
    if (client.status === "wait" || client.status === "end") {
      // Asked for by an operation: one more attempt, also after the credentials were refused.
      this.#refused = undefined;
      client.connect().catch(() => {});
    }
    return promise;
  }

  #clientOnce(): RedisClient {
    if (this.#client === undefined) this.#client = this.#createClient();
    if (this.#stopListening === undefined) this.#stopListening = this.#countConnections(this.#client);
    return this.#client;
  }

  // Counts the connections the client makes, for `onConnected`; a cluster also makes one to
  // each new master.
  #countConnections(client: RedisClient): () => void {
    const onReady = () => {
      this.#connections++;
    };
    client.on("ready", onReady).on("+node", onReady);
    return () => {
      client.off("ready", onReady).off("+node", onReady);
    };
  }

  #createClient(): RedisClient {
    const { clusterNodes, redisOptions, clusterOptions, timeoutMs, waitTimeoutMs, maxReconnectDelayMs } =
      this.#settings;
    // No reconnection after the server refused the credentials: it would be refused again.
    const retryDelay = (attempt: number) =>
      this.#refused !== undefined ? null : Math.min(FIRST_RECONNECT_DELAY_MS * 2 ** (attempt - 1), maxReconnectDelayMs);
    // No offline queue and no resending after a reconnect: a command either reaches a connected
    // server now or fails, so a write the caller saw fail is never carried out later. (ioredis
    // turns the offline queue back on for each cluster node; FailFastCluster handles that.)
    // Commands time out by the clients' own timers (CommandTimeoutError), not ioredis' commandTimeout.
    const failFast: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      connectTimeout: timeoutMs,
    };
    const commandTimeoutMs = timeoutMs + waitTimeoutMs;
    const client =
      clusterNodes === undefined
        ? new FailFastRedis({ ...this.#serverOptions, ...failFast, retryStrategy: retryDelay }, commandTimeoutMs)
        : new FailFastCluster(
            clusterNodes,
            {
              ...clusterOptions,
              lazyConnect: true,
              enableOfflineQueue: false,
              // A MOVED reply is followed at once, within the command's deadline, never from a timer.
              retryDelayOnMoved: 0,
              clusterRetryStrategy: retryDelay,
              redisOptions: { ...clusterOptions.redisOptions, ...redisOptions, ...failFast, lazyConnect: true },
            },
            commandTimeoutMs,
          );
    // Without a listener ioredis prints every connection error; the last one goes into messages.
    client.on("error", (error: Error) => {
      this.#lastError = redactCommandArguments(error);
      if (credentialRefusal(error) !== undefined) this.#refused = error;
    });
    return client;
  }
}

// The options of the single-server client: what the URL says wins over `redisOptions` (as in
// ioredis), and without a URL `redisOptions` may name the server.
function serverOptions(settings: ConnectionSettings, context: PersistErrorContext): RedisOptions {
  const { url, redisOptions } = settings;
  if (url === undefined) return { host: "127.0.0.1", port: 6379, ...redisOptions };
  const { tls, ...fromUrl } = redisUrlSettings(url, context);
  const options: RedisOptions = { ...redisOptions, ...fromUrl };
  if (tls && options.tls === undefined) options.tls = {};
  return options;
}

function passwordsOf(settings: ConnectionSettings, serverOptions: RedisOptions | undefined): string[] {
  const given = settings.client?.options as (RedisOptions & { redisOptions?: RedisOptions }) | undefined;
  return connectionSecrets("redis", {
    passwords: [
      serverOptions?.password,
      settings.redisOptions.password,
      settings.clusterOptions.redisOptions?.password,
      given?.password,
      given?.redisOptions?.password,
    ],
  });
}

// Ready to send: on a cluster this backend made, the connection to every master too.
function isConnected(client: RedisClient): boolean {
  return client instanceof FailFastCluster ? client.connected : client.status === "ready";
}

function errorCode(error: Error | undefined): unknown {
  return (error as { code?: unknown } | undefined)?.code;
}

function usesTls(client: RedisClient): boolean {
  const options = client.options as RedisOptions & { redisOptions?: RedisOptions };
  return Boolean(client.isCluster ? options.redisOptions?.tls : options.tls);
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
