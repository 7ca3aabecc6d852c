import { errorMessage, InvalidOptionError, PersistError } from "./errors.js";
import { PersistMemory } from "./records/memory.js";
import type { PersistBase, PersistOptions } from "./signals/persist-base.js";

/** The options {@link createPersist} passes to a backend's `fromUrl`. */
export interface FromUrlOptions extends PersistOptions {
  /**
   * Checked by createPersist (see {@link CreatePersistOptions.scope}): the backend keeps this
   * scope's records apart from every other scope's and from unscoped ones in the same server or
   * directory.
   */
  scope?: string;
}

/** What a backend package exports so {@link createPersist} can build it from a URL. */
export interface BackendModule {
  fromUrl(url: string, options?: FromUrlOptions): PersistBase | Promise<PersistBase>;
  /** The package's name (`"@persist-kit/persist-redis"`): {@link CreatePersistOptions.backends} finds a module by it. */
  readonly packageName?: string;
}

interface BackendPackage {
  name: string;
  /** The driver installed beside it (a peer dependency), if any. */
  driver?: string;
}

const BACKEND_PACKAGES: Record<string, BackendPackage> = {
  file: { name: "@persist-kit/persist-file" },
  redis: { name: "@persist-kit/persist-redis", driver: "ioredis" },
  rediss: { name: "@persist-kit/persist-redis", driver: "ioredis" },
  mongodb: { name: "@persist-kit/persist-mongo", driver: "mongodb" },
  "mongodb+srv": { name: "@persist-kit/persist-mongo", driver: "mongodb" },
  postgres: { name: "@persist-kit/persist-postgres", driver: "pg" },
  postgresql: { name: "@persist-kit/persist-postgres", driver: "pg" },
};

// The CommonJS build loads backends with `require`, so a CommonJS bot gets CommonJS backends over
// this same copy of core; the ESM build, where `module` is not defined, imports them. (`require`
// alone cannot tell: the ESM build has a stand-in for it that throws.)
const loadModule: (name: string) => Promise<unknown> =
  typeof module === "object" && module !== null && typeof module.require === "function"
    ? (name) => Promise.resolve().then(() => module.require(name))
    : (name) => import(name);

/** Options of {@link createPersist}. */
export interface CreatePersistOptions extends PersistOptions {
  /**
   * Loads a backend package by name. Default: `require(name)` in the CommonJS build and
   * `import(name)` in the ESM build, resolved from this package; pass
   * `(name) => import(name)` from your own code when your package manager keeps packages apart.
   */
  importModule?: (name: string) => Promise<unknown>;
  /**
   * The backend modules to build from, instead of loading one by name: for a bundled application,
   * whose bundler cannot follow a load by name (`import * as persistRedis from
   * "@persist-kit/persist-redis"`, then `backends: [persistRedis]`). A URL whose backend is not
   * among them is refused; nothing is loaded by name.
   */
  backends?: readonly BackendModule[];
  /**
   * Keeps this bot's records apart from other bots on the same URL: a lowercase name
   * (`/^[a-z][a-z0-9_]{0,31}$/`). Also `?scope=name` in the URL, which is removed before the
   * driver sees it; both may be given only when they agree. Each backend applies it its own way:
   * persist-file the directory `<baseDir>.name` beside the store, persist-redis a key prefix `persist-kit:@name:`,
   * persist-postgres the table `persist_records_name`, persist-mongo the collection
   * `signals_name` (a table or collection given as an option gets the same suffix).
   */
  scope?: string;
}

const SCOPE = /^[a-z][a-z0-9_]{0,31}$/;

/**
 * `url` without its `scope` query parameter, and the scope it named. Works on the text, so the
 * rest of the URL, user info included, reaches the driver as it was written.
 */
function takeScope(url: string): { url: string; scope: string | undefined } {
  const hash = url.indexOf("#");
  const beforeHash = hash === -1 ? url : url.slice(0, hash);
  const question = beforeHash.indexOf("?");
  if (question === -1) return { url, scope: undefined };
  const params = beforeHash.slice(question + 1).split("&");
  const scopes = params.filter((param) => /^scope(=|$)/.test(param));
  if (scopes.length === 0) return { url, scope: undefined };
  const context = { backend: "core", operation: "create" } as const;
  if (scopes.length > 1) throw new InvalidOptionError("the URL names scope more than once", context);
  const kept = params.filter((param) => !/^scope(=|$)/.test(param));
  const rest = `${beforeHash.slice(0, question)}${kept.length === 0 ? "" : `?${kept.join("&")}`}`;
  let scope: string;
  try {
    scope = decodeURIComponent((scopes[0] as string).slice("scope=".length));
  } catch {
    throw new InvalidOptionError("the URL's scope is not a valid percent-encoded name", context);
  }
  return { url: hash === -1 ? rest : `${rest}${url.slice(hash)}`, scope };
}

function checkedScope(fromOption: unknown, fromUrl: string | undefined): string | undefined {
  const context = { backend: "core", operation: "create" } as const;
  if (fromOption !== undefined && (typeof fromOption !== "string" || !SCOPE.test(fromOption))) {
    throw new InvalidOptionError(`scope must match ${SCOPE.source}, got ${JSON.stringify(fromOption)}`, context);
  }
  // A name that breaks the rule is not shown: it came from a URL, which may hold a password.
  if (fromUrl !== undefined && !SCOPE.test(fromUrl)) {
    throw new InvalidOptionError(`the URL's scope must match ${SCOPE.source}`, context);
  }
  if (fromOption !== undefined && fromUrl !== undefined && fromOption !== fromUrl) {
    throw new InvalidOptionError(`scope ${JSON.stringify(fromOption)} differs from the URL's scope`, context);
  }
  return (fromOption as string | undefined) ?? fromUrl;
}

/**
 * Builds a backend from a URL: `memory:`, `file:./data` (or `file:///abs/dir`), `redis://`,
 * `rediss://`, `mongodb://`, `mongodb+srv://`, `postgres://`, `postgresql://`. The backend package
 * is loaded on demand; when it is not installed the error names the package to install.
 *
 * @example
 * const persist = await createPersist(process.env.PERSIST_URL ?? "file:./data");
 */
export async function createPersist(url: string, options: CreatePersistOptions = {}): Promise<ClosablePersist> {
  const { importModule, backends, scope: scopeOption, ...persistOptions } = options;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  const taken = typeof url === "string" ? takeScope(url) : { url, scope: undefined };
  const scope = checkedScope(scopeOption, taken.scope);
  // Each memory store is its own: a scope has nothing to keep apart.
  if (scheme === "memory") return new PersistMemory(persistOptions);
  const backendPackage = scheme === undefined ? undefined : BACKEND_PACKAGES[scheme];
  if (backendPackage === undefined) {
    const known = ["memory", ...Object.keys(BACKEND_PACKAGES)].map((name) => `${name}:`).join(", ");
    // Only the scheme is named: the rest of an unknown URL may hold a password in any form.
    const shown = scheme === undefined ? "a URL without a scheme" : `the scheme ${JSON.stringify(`${scheme}:`)}`;
    throw new PersistError(`unsupported URL (${shown}); expected one of ${known}`, {
      backend: "core",
      operation: "create",
    });
  }
  const backendModule =
    backends === undefined
      ? await loadBackend(backendPackage, importModule ?? loadModule)
      : givenBackend(backendPackage, backends, importModule !== undefined);
  const persist = await backendModule.fromUrl(
    taken.url,
    scope === undefined ? persistOptions : { ...persistOptions, scope },
  );
  if (typeof persist?.close !== "function") {
    throw new InvalidOptionError(`${backendPackage.name}'s fromUrl() gave a backend without close()`, {
      backend: "core",
      operation: "create",
    });
  }
  return persist as ClosablePersist;
}

/** A backend that {@link createPersist} made: its `close()` ends what it opened (connections, threads). */
export type ClosablePersist = PersistBase & { close(): Promise<void> };

function givenBackend(backendPackage: BackendPackage, backends: readonly BackendModule[], alsoImport: boolean) {
  const context = { backend: "core", operation: "create" } as const;
  if (alsoImport) throw new InvalidOptionError("pass backends or importModule, not both", context);
  if (!Array.isArray(backends) || backends.some((module) => typeof module?.fromUrl !== "function")) {
    throw new InvalidOptionError("backends must be an array of backend modules, each exporting fromUrl()", context);
  }
  const found = backends.find((module) => module.packageName === backendPackage.name);
  if (found === undefined) {
    const given = backends.map((module) => module.packageName ?? "a module without packageName").join(", ");
    throw new InvalidOptionError(
      `the URL needs ${backendPackage.name}, which is not among the backends given (${given || "none"}); add its module: import * as backend from "${backendPackage.name}"`,
      context,
    );
  }
  return found;
}

async function loadBackend(
  backendPackage: BackendPackage,
  importModule: (name: string) => Promise<unknown>,
): Promise<BackendModule> {
  const context = { backend: "core", operation: "create" } as const;
  let loaded: unknown;
  try {
    loaded = await importModule(backendPackage.name);
  } catch (error) {
    const missing = missingModule(error);
    const driver = backendPackage.driver;
    if (driver !== undefined && missing === driver) {
      throw new PersistError(
        `${driver} is not installed (${backendPackage.name} needs it); install it with: npm install ${driver}`,
        { ...context, cause: error },
      );
    }
    if (missing !== backendPackage.name) {
      throw new PersistError(`loading ${backendPackage.name} failed: ${errorMessage(error)}`, {
        ...context,
        cause: error,
      });
    }
    const install = [backendPackage.name, driver].filter(Boolean).join(" ");
    throw new PersistError(`${backendPackage.name} is not installed; install it with: npm install ${install}`, {
      ...context,
      cause: error,
    });
  }
  const backendModule = loaded as Partial<BackendModule>;
  if (typeof backendModule.fromUrl !== "function") {
    throw new PersistError(`${backendPackage.name} does not export fromUrl()`, context);
  }
  return backendModule as BackendModule;
}

// The package a module-not-found error names: "Cannot find package 'ioredis' imported from ..."
// (ESM) or "Cannot find module 'ioredis'" (CommonJS); a path names its package's directory.
function missingModule(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") return undefined;
  const named = /Cannot find (?:package|module) '([^']+)'/.exec(errorMessage(error))?.[1];
  if (named === undefined) return undefined;
  const inNodeModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(named)?.[1];
  if (inNodeModules !== undefined) return inNodeModules;
  const parts = named.split("/");
  return named.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}
