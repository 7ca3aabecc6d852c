import type { PersistBase } from "@persist-kit/core";

/** The parts of a test runner the suite uses; vitest and jest fit as they are. */
export interface ContractRunner {
  describe: (name: string, body: () => void) => void;
  it: (name: string, body: () => Promise<void> | void, timeout?: number) => void;
  beforeAll: (body: () => Promise<void> | void, timeout?: number) => void;
  afterAll: (body: () => Promise<void> | void, timeout?: number) => void;
}

/** Reads and writes the store directly, bypassing the backend, so the suite checks what is really kept. */
export interface RawAccess<B extends PersistBase> {
  /** The JSON text stored for the key, or `null` when nothing is stored. */
  read(backend: B, symbol: string, strategyName: string): Promise<string | null>;
  /** Stores `text` under the key as if the backend had written it. */
  write(backend: B, symbol: string, strategyName: string, text: string): Promise<void>;
  /** False when the store only holds valid JSON (a jsonb column, say): unparsable text is then not tried. Default: true. */
  storesText?: boolean;
}

/** How a child process opens the same store as a backend made by `create()`. */
export interface WorkerAccess<B extends PersistBase> {
  /**
   * Absolute path or file URL of an ES module that exports
   * `createBackend(options): Promise<PersistBase>`; it runs in a separate Node process.
   */
  module: string;
  /** JSON-serializable options for `createBackend`, naming the store `backend` uses. */
  options(backend: B): unknown;
  /** Extra Node flags for the child, for example a TypeScript loader. */
  execArgv?: string[];
}

/** Everything the suite needs to know about one backend. */
export interface ContractInitializer<B extends PersistBase = PersistBase> {
  /** Shown in the suite's name, for example `"file"`. */
  name: string;
  /** Runs once before the suite (start a server, create a schema). */
  setup?(): Promise<void> | void;
  /**
   * A backend over a fresh, empty namespace (directory, key prefix, table) that no other call
   * shares. `ttlMs` is set only by the TTL tests.
   */
  create(options: { ttlMs?: number }): Promise<B> | B;
  /** Releases one backend made by `create`. Default: `backend.close?.()`. */
  destroy?(backend: B): Promise<void> | void;
  /** Runs once after the suite. */
  teardown?(): Promise<void> | void;
  /** Direct access to the store; enables the checks of what is really stored and of corrupt data. */
  raw?: RawAccess<B>;
  /** Enables the multi-process promises: SIGKILL trials, concurrent writers, fresh-process reads, exit after close. */
  worker?: WorkerAccess<B>;
  /** Enables the TTL promises (contract item 10). */
  ttl?: boolean;
  /**
   * Enables the unavailable-store promise (contract item 8): a backend whose store cannot be
   * reached, and how long its operations may take to fail.
   */
  unavailable?: { create(): Promise<PersistBase> | PersistBase; timeoutMs: number };
  timeouts?: {
    /** For `setup`. Default: 120 000 ms. */
    setup?: number;
    /** For each test. Default: 30 000 ms. */
    test?: number;
    /** For `teardown`. Default: 60 000 ms. */
    teardown?: number;
  };
}

/** Knobs of the suite itself. */
export interface ContractOptions {
  /** Runs per property test. Default: 40. */
  propertyRuns?: number;
  /** SIGKILL trials of a writing child process. Default: 200. */
  killTrials?: number;
  /** Writer processes racing on one key. Default: 4. */
  concurrentWriters?: number;
  /** Writes each concurrent writer makes. Default: 50. */
  writesPerWriter?: number;
  /** Processes racing conditional writes on one key. Default: 8. */
  raceProcesses?: number;
  /** Rounds of that race. Default: `PERSIST_KIT_RACE_ROUNDS` from the environment, else 200. */
  raceRounds?: number;
  /** The lease of the ownership, fencing and chaos promises' adapters. Default: 1500 ms. */
  leaseMs?: number;
  /** The `timeoutMs` of those adapters. Default: 500 ms. */
  adapterTimeoutMs?: number;
  /** Operations of the chaos promise. Default: `PERSIST_KIT_CHAOS_OPS` from the environment, else 1000. */
  chaosOperations?: number;
  /** Processes of the chaos promise. Default: 3. */
  chaosProcesses?: number;
  /** Only these promises (see `CONTRACT_PROMISES`). Default: every one. */
  promises?: ReadonlyArray<import("./suite.js").ContractPromise>;
}
