// backtest-kit's published declarations, for type checks: the package is fetched from the registry
// with `npm pack` into `modulesDir/backtest-kit`, and its own dependencies, which the registry
// lacks in the versions it names, are stood in for by type modules that declare only what it
// uses. Its JavaScript cannot run without them: this serves compilers, not programs.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const STUBS = {
  "functools-kit": `export declare const TIMEOUT_SYMBOL: unique symbol;
export declare class Subject<T = any> {
  next(value: T): Promise<void>;
  subscribe(callback: (value: T) => void): () => void;
  [member: string]: any;
}
export declare class BehaviorSubject<T = any> extends Subject<T> {}
export type IClearableMemoize<A = any, B = any, C = any> = any;
export type IControlMemoize<A = any, B = any, C = any> = any;
export type ISingleshotClearable<A = any> = any;
export type IWrappedQueuedFn<A = any, B = any> = any;
`,
  "di-scoped": "export type IScopedClassRun<A = any, B = any> = any;\n",
};

/** Puts backtest-kit `version` (its declarations) and type stand-ins for its dependencies in `modulesDir`. */
export function installFrameworkStandIn(modulesDir, version = "19.5.0") {
  const download = mkdtempSync(join(tmpdir(), "persist-kit-backtest-kit-"));
  try {
    const framework = join(modulesDir, "backtest-kit");
    mkdirSync(framework, { recursive: true });
    execFileSync("npm", ["pack", `backtest-kit@${version}`, "--pack-destination", download, "--silent"], {
      cwd: download,
      stdio: ["ignore", "ignore", "inherit"],
    });
    execFileSync("tar", [
      "-xzf",
      join(download, `backtest-kit-${version}.tgz`),
      "-C",
      framework,
      "--strip-components=1",
    ]);
    for (const [name, types] of Object.entries(STUBS)) {
      mkdirSync(join(modulesDir, name), { recursive: true });
      writeFileSync(
        join(modulesDir, name, "package.json"),
        JSON.stringify({ name, version: "0.0.0", types: "index.d.ts" }),
      );
      writeFileSync(join(modulesDir, name, "index.d.ts"), types);
    }
  } finally {
    rmSync(download, { recursive: true, force: true });
  }
}
