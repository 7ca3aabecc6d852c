import { Cluster, type ClusterNode, type ClusterOptions, type Redis } from "ioredis";
import { armCommandTimeout, type DeadlineClient, markDeadlineClient, remainingMs } from "./command-deadline.js";

// The promises of commands that were answered or gave up (timed out): a command whose promise
// is here is never written to a socket again. (A pipeline that follows MOVED gives each of its
// commands a new promise and sends it again: that is a send before the deadline, not after.)
const SETTLED = new WeakSet<Promise<unknown>>();

/**
 * The Redis Cluster client this backend makes: it never sends a command behind the caller's
 * back. ioredis' own `Cluster` re-sends a command from a timer after CLUSTERDOWN, TRYAGAIN or a
 * closed connection, follows a redirection that arrives after the command timed out, and gives
 * every node connection an offline queue (whatever `redisOptions` say) that sends a command once
 * the node is connected; each can carry out a write the caller was already told had failed,
 * after a later write or delete. Here only MOVED and ASK are followed, at once, up to
 * `maxRedirections`; every other error rejects the command as it is; and no node writes a
 * command that already settled (timed out), whatever queue or redirection it comes from.
 *
 * Every command times out by this backend's timer, with a `CommandTimeoutError`: at the
 * deadline of its operation (set through `issueBefore`), else (a command sent to a node directly,
 * or after an `await`) after `commandTimeoutMs`.
 */
export class FailFastCluster extends Cluster implements DeadlineClient {
  /**
   * The deadline (`performance.now()` ms) of the commands issued right now, set by
   * `issueBefore`: each such command times out then.
   */
  deadline: number | undefined;
  readonly #connecting = new WeakMap<Redis, Promise<void>>();

  constructor(startupNodes: ClusterNode[], options: ClusterOptions, commandTimeoutMs: number) {
    super(startupNodes, { ...options, redisOptions: { ...options.redisOptions, commandTimeout: undefined } });
    markDeadlineClient(this);
    // Every send, first or redirected, from a queue or not, ends in a node's sendCommand.
    this.on("+node", (node: Redis) => {
      const send = node.sendCommand.bind(node);
      node.sendCommand = (...args: Parameters<Redis["sendCommand"]>) => {
        const [command] = args;
        if (SETTLED.has(command.promise)) return command.promise;
        // A command the cluster issued was armed with its operation's deadline already; one sent
        // to the node directly (SCAN, INFO) gets it here.
        if (!armCommandTimeout(command, remainingMs(this.deadline, commandTimeoutMs))) return command.promise;
        return send(...args);
      };
    });
  }

  /** True when the cluster is ready and so is the connection to every master. */
  get connected(): boolean {
    return this.status === "ready" && this.nodes("master").every((node) => node.status === "ready");
  }

  /**
   * Connects to every master not connected yet (ioredis does so only at a node's first command,
   * and refuses commands to a node while it connects). Resolves once every one is ready; rejects
   * when a connection ends (ioredis does not reconnect a node: it refreshes the slots instead).
   */
  mastersConnected(): Promise<void> {
    return Promise.all(this.nodes("master").map((node) => this.#nodeReady(node))).then(() => {});
  }

  override sendCommand(...args: Parameters<Cluster["sendCommand"]>): unknown {
    const [command] = args;
    // Armed once, at the first issue: a redirected resend keeps the first deadline.
    if (this.deadline !== undefined && !armCommandTimeout(command, remainingMs(this.deadline, 0))) {
      return command.promise;
    }
    const { promise } = command;
    const settle = () => SETTLED.add(promise);
    promise.then(settle, settle);
    return super.sendCommand(...args);
  }

  override handleError(error: Error, ttl: { value?: number }, handlers: ClusterErrorHandlers): void {
    const code = error.message.split(" ", 1)[0];
    if (code !== "MOVED" && code !== "ASK") {
      handlers.defaults();
      return;
    }
    // Out of redirections, the command fails with the server's last refusal: it never ran.
    super.handleError(error, ttl, { ...handlers, maxRedirections: () => handlers.maxRedirections(error) });
  }

  // One wait per node, shared by every operation waiting for it.
  #nodeReady(node: Redis): Promise<void> {
    if (node.status === "ready") return Promise.resolve();
    let ready = this.#connecting.get(node);
    if (ready === undefined) {
      ready = new Promise<void>((resolve, reject) => {
        const onReady = () => {
          node.off("end", onEnd);
          resolve();
        };
        const onEnd = () => {
          node.off("ready", onReady);
          reject(new Error(`the connection to ${node.options.host}:${node.options.port} ended`));
        };
        node.once("ready", onReady).once("end", onEnd);
      }).finally(() => this.#connecting.delete(node));
      ready.catch(() => {});
      this.#connecting.set(node, ready);
      if (node.status === "wait") node.connect().catch(() => {});
    }
    return ready;
  }
}

/** What ioredis' `Cluster#handleError` calls back: a retry per kind of error, or a final rejection. */
interface ClusterErrorHandlers {
  maxRedirections(error: Error): void;
  defaults(): void;
  [retry: string]: (...args: never[]) => void;
}
