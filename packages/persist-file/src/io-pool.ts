import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { IoMessage, IoReply } from "./io-worker.js";
import { describeFailure, type IoFailure, type IoRequest, runIoRequest } from "./record-jobs.js";

// The thread's module is built beside this file: dist/io-worker.js (ESM) for both builds.
const IO_WORKER_PATH = fileURLToPath(new URL("./io-worker.js", moduleUrl()));

/** The `code` of the error of a request that never ran: the I/O thread's module is missing. */
export const WORKER_MISSING_CODE = "PERSIST_FILE_WORKER_MISSING";

// The ESM build has import.meta.url, and only it counts there: a global __filename (node -e, a
// REPL, a bundler's shim) names some other file. tsup's CommonJS build has an empty import.meta,
// and its own module-scoped __filename.
function moduleUrl(): string {
  const url: unknown = import.meta.url;
  return typeof url === "string" ? url : pathToFileURL(__filename).href;
}

function workerMissing(detail: string): IoError {
  return new IoError({
    message: `@persist-kit/persist-file is not packaged correctly: its I/O thread module ${IO_WORKER_PATH} ${detail}; reinstall the package, or, in a bundled application, pass writeThreads: 0 to run writes on the calling thread`,
    code: WORKER_MISSING_CODE,
  });
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
 * With size 0 there is no thread: each request runs on the calling thread, as the same one
 * synchronous sequence, and fails the same way (for bundled applications, which lack the thread's
 * module).
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
    if (this.#size === 0) {
      return new Promise<T>((resolve, reject) => {
        try {
          resolve(runIoRequest(request) as T);
        } catch (error) {
          reject(new IoError(describeFailure(error)));
        }
      });
    }
    let thread: IoThread;
    try {
      thread = this.#pick();
    } catch (error) {
      return Promise.reject(error);
    }
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
    // Nothing has run yet: the request fails with nothing changed.
    if (!existsSync(IO_WORKER_PATH)) throw workerMissing("does not exist");
    // The thread runs plain built JavaScript: it needs none of the application's Node flags, and
    // a worker refuses some of them (--input-type, for one).
    const worker = new Worker(IO_WORKER_PATH, { execArgv: [] });
    const thread: IoThread = { worker, waiting: new Map() };
    const fail = (error: unknown) => {
      this.#threads = this.#threads.filter((other) => other !== thread);
      // A module the thread imports could not be found: it never started, no request ran.
      const failure =
        (error as { code?: unknown } | null)?.code === "ERR_MODULE_NOT_FOUND"
          ? workerMissing(`could not be loaded (${(error as Error).message})`)
          : error;
      for (const waiting of thread.waiting.values()) waiting.reject(failure);
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
