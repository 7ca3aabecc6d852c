import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { IoMessage, IoReply } from "./io-worker.js";
import type { IoFailure, IoRequest } from "./record-jobs.js";

// The thread's module is built beside this file: dist/io-worker.js (ESM) for both builds.
const IO_WORKER_PATH = fileURLToPath(new URL("./io-worker.js", importMetaUrl()));

function importMetaUrl(): string {
  // tsup's CommonJS build has no import.meta; __filename stands in for it there.
  return typeof __filename === "string" ? pathToFileURL(__filename).href : import.meta.url;
}

/** A request the file system refused, rebuilt on this side with its `code`. */
export class IoError extends Error {
  readonly code: string | undefined;
  /** True when a change failed after its rename: the new file is in place, maybe not yet durable. */
  readonly renamed: boolean;

  constructor(failure: IoFailure) {
    super(failure.message);
    this.name = "IoError";
    this.code = failure.code;
    this.renamed = failure.renamed === true;
  }
}

interface Waiting {
  resolve(result: unknown): void;
  reject(error: unknown): void;
}

interface IoThread {
  worker: Worker;
  waiting: Map<number, Waiting>;
}

/**
 * A few worker threads that run {@link IoRequest}s. Started on first use; a thread holds the
 * process open only while it has work, so a backend that is never closed does not keep it alive.
 */
export class IoPool {
  readonly #size: number;
  #threads: IoThread[] = [];
  #nextId = 0;

  constructor(size: number) {
    this.#size = size;
  }

  /** Runs `request` on the least busy thread. */
  run<T>(request: IoRequest): Promise<T> {
    const thread = this.#pick();
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      if (thread.waiting.size === 0) thread.worker.ref();
      thread.waiting.set(id, { resolve: resolve as (result: unknown) => void, reject });
      thread.worker.postMessage({ id, request } satisfies IoMessage);
    });
  }

  /** Stops every thread; requests still waiting reject. */
  async close(): Promise<void> {
    const threads = this.#threads;
    this.#threads = [];
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }

  #pick(): IoThread {
    const idle = this.#threads.find((thread) => thread.waiting.size === 0);
    if (idle !== undefined) return idle;
    if (this.#threads.length < this.#size) return this.#start();
    return this.#threads.reduce((least, thread) => (thread.waiting.size < least.waiting.size ? thread : least));
  }

  #start(): IoThread {
    // The thread runs plain built JavaScript: it needs none of the application's Node flags, and
    // a worker refuses some of them (--input-type, for one).
    const worker = new Worker(IO_WORKER_PATH, { execArgv: [] });
    const thread: IoThread = { worker, waiting: new Map() };
    const fail = (error: unknown) => {
      this.#threads = this.#threads.filter((other) => other !== thread);
      for (const waiting of thread.waiting.values()) waiting.reject(error);
      thread.waiting.clear();
    };
    thread.worker.on("message", (reply: IoReply) => {
      const waiting = thread.waiting.get(reply.id);
      thread.waiting.delete(reply.id);
      if (thread.waiting.size === 0) thread.worker.unref();
      if ("failure" in reply) waiting?.reject(new IoError(reply.failure));
      else waiting?.resolve(reply.result);
    });
    thread.worker.on("error", fail);
    thread.worker.on("exit", (code) => fail(new Error(`the I/O thread stopped (exit code ${code})`)));
    this.#threads.push(thread);
    return thread;
  }
}
